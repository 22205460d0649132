#include "imgpipe/runtime.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <vector>

#include "imgpipe/broker.hpp"
#include "imgpipe/classifier.hpp"
#include "imgpipe/feature.hpp"
#include "imgpipe/logging.hpp"
#include "imgpipe/metrics.hpp"
#include "imgpipe/preprocess.hpp"
#include "imgpipe/stage_worker.hpp"

#ifndef IMGPIPE_DEFAULT_MODEL_DIR
#define IMGPIPE_DEFAULT_MODEL_DIR "models"
#endif

namespace imgpipe {

std::string default_model_dir() {
  return IMGPIPE_DEFAULT_MODEL_DIR;
}

namespace {
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

StopSignal::StopSignal() {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  waiter_ = std::thread([this, set] {
    int received = 0;
    sigwait(&set, &received);
    stop_ = true;
  });
}

StopSignal::~StopSignal() {
  // Wake the waiter if no signal came, so the thread can be joined.
  if (!stop_) pthread_kill(waiter_.native_handle(), SIGTERM);
  waiter_.join();
}

namespace {
// The worker's stage chain as its metrics label and log name it, e.g. "preprocess+feature".
std::string chain_name(const WorkerConfig& config) {
  return config.with_preprocess && config.role != "preprocess" ? "preprocess+" + config.role : config.role;
}
}  // namespace

namespace {

// The --test-fail-marker hook: throws for a delivery whose body holds `marker`, which the QueueWorker
// treats like any stage bug (reject with requeue, until the delivery limit dead-letters it).
DeliveryHandler failing_on_marker(DeliveryHandler handler, std::string marker) {
  return [handler = std::move(handler), marker = std::move(marker)](const IncomingMessage& message) {
    if (std::search(message.body.begin(), message.body.end(), marker.begin(), marker.end()) !=
        message.body.end()) {
      throw std::runtime_error("test hook: the message holds the marker \"" + marker + "\"");
    }
    return handler(message);
  };
}

}  // namespace

int run_stage_worker(const WorkerConfig& config, const std::atomic<bool>& stop) {
  Logger log(config.role, config.verbose, config.log_format);
  if (config.role != "preprocess" && config.role != "feature" && config.role != "classify") {
    log.error("unknown worker role " + config.role);
    return 2;
  }
  BrokerAddress address;
  try {
    address = BrokerAddress::parse(config.broker);
  } catch (const std::invalid_argument& error) {
    log.error(std::string("bad broker URL: ") + error.what());
    return 2;
  }
  const std::string stages = chain_name(config);
  // Shared with the handler and the model caches, which the QueueWorker and the stages keep.
  std::shared_ptr<WorkerMetrics> metrics;
  try {
    metrics = std::make_shared<WorkerMetrics>(stages, config.metrics_address, config.metrics_port);
  } catch (const std::runtime_error& error) {
    log.error(std::string(error.what()) +
              " (another process on that port? --metrics-port 0 turns metrics off)");
    return 2;
  }
  const ModelLoadObserver on_load = [metrics, &log](const ModelConfig& model,
                                                    std::chrono::duration<double> took) {
    metrics->model_loaded(took);
    log.info("loaded model " + model.name + " version " + model.version + " in " +
             std::to_string(took.count()) + " s");
  };

  const ModelStore store(config.models);
  ComputeOptions compute{config.threads, config.batch_size, true};
  DecodeLimits limits;
  limits.max_pixels = config.max_pixels;
  limits.max_file_bytes = static_cast<std::size_t>(config.max_file_bytes);

  std::vector<std::shared_ptr<Stage>> chain;
  if (config.role == "preprocess" || config.with_preprocess)
    chain.push_back(std::make_shared<PreprocessStage>(store, limits, on_load));
  if (config.role == "feature") {
    configure_compute(compute);
    chain.push_back(std::make_shared<FeatureStage>(store, compute, on_load));
  }
  if (config.role == "classify") chain.push_back(std::make_shared<ClassifyStage>(store, on_load));

  WorkerOptions options;
  options.queue = queue_for(chain.front()->input_kind());
  options.prefetch = config.prefetch;
  options.connection.heartbeat = std::chrono::seconds(config.heartbeat_seconds);
  options.connection.delivery_limit = config.delivery_limit;
  options.connection.client_name = "imgpipe-" + config.role;
  options.on_held_changed = [metrics](std::size_t held) { metrics->deliveries_in_flight(held); };
  options.fault.crash_before_ack = config.fault_crash_before_ack;
  options.fault.handler_delay = std::chrono::milliseconds(config.fault_handler_delay_ms);
  if (config.fault_crash_before_ack != 0 || config.fault_handler_delay_ms != 0) {
    log.warn("fault injection is on (crash before ack of delivery " +
             std::to_string(config.fault_crash_before_ack) + ", handler delay " +
             std::to_string(config.fault_handler_delay_ms) + " ms): for tests only");
  }
  const std::string endpoint = metrics->endpoint();
  log.info("starting " + stages + " on " + options.queue + " via " + address.redacted() + ", models " +
           store.root().string() + ", batch " + std::to_string(config.batch_size) + ", prefetch " +
           std::to_string(config.prefetch) + ", metrics " +
           (endpoint.empty() ? std::string("off") : "http://" + endpoint + "/metrics"));
  try {
    CodecLimits codec_limits;
    codec_limits.max_message_bytes = static_cast<std::size_t>(config.max_message_bytes);
    DeliveryHandler handler = make_stage_handler(chain, options.queue, log, metrics, codec_limits);
    if (!config.test_fail_marker.empty()) {
      log.warn("test hook on: deliveries holding \"" + config.test_fail_marker + "\" make the stage fail");
      handler = failing_on_marker(std::move(handler), config.test_fail_marker);
    }
    QueueWorker worker(address, options, std::move(handler), log.as_log_fn());
    worker.run(stop);
    const auto stats = worker.stats();
    log.info("stopped after " + std::to_string(stats.handled) + " messages, " +
             std::to_string(stats.reconnects) + " reconnects");
  } catch (const std::exception& error) {
    log.error(std::string("worker failed: ") + error.what());
    return 1;
  }
  return 0;
}

}  // namespace imgpipe
