#include "imgpipe/worker/run_worker.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>

#include "imgpipe/messages/protocol.hpp"
#include "imgpipe/ops/metrics.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/stages/stage_factory.hpp"
#include "imgpipe/storage/s3_client.hpp"
#include "imgpipe/transport/amqp/queue_worker.hpp"
#include "imgpipe/worker/stage_handler.hpp"

namespace imgpipe {

namespace {

// A worker's metrics, served where the configuration says if the port can be had; otherwise kept unserved,
// with a warning: the worker's real work does not depend on them.
std::shared_ptr<WorkerMetrics> start_metrics(const WorkerConfig& config, const std::string& stages,
                                             const Logger& log) {
  auto metrics = std::make_shared<WorkerMetrics>(stages);
  if (config.metrics_port == 0) return metrics;
  const int last = config.metrics_port_chosen ? config.metrics_port
                                              : std::min(65535, config.metrics_port + kMetricsPortsTried - 1);
  std::string failure;
  for (int port = config.metrics_port; port <= last; ++port) {
    try {
      metrics->serve(config.metrics_address, port);
      if (port != config.metrics_port) {
        log.info("metrics port " + std::to_string(config.metrics_port) +
                 " is taken (another worker on this host?); serving metrics on port " + std::to_string(port));
      }
      return metrics;
    } catch (const MetricsUnavailable& error) {
      failure = error.what();
    }
  }
  log.warn(failure +
           (last != config.metrics_port ? " (and on the ports up to " + std::to_string(last) + ")" : "") +
           "; running WITHOUT metrics. Give this worker a free --metrics-port, or 0 to turn them off");
  return metrics;
}

}  // namespace

int run_stage_worker(const WorkerConfig& config, const std::atomic<bool>& stop,
                     const FaultInjection& faults) {
  Logger log(config.role, config.verbose, config.log_format);
  const StageSpec* role = find_stage(config.role);
  if (role == nullptr) {
    log.error("unknown worker role " + config.role);
    return 2;
  }
  BrokerList address;
  try {
    address = BrokerList::parse(config.broker);
  } catch (const std::invalid_argument& error) {
    log.error(std::string("bad broker URL: ") + error.what());
    return 2;
  }
  const std::string first = config.with_preprocess ? stage_graph().front().name : role->name;
  const std::vector<StageSpec> plan = plan_stages(first, role->name);
  std::string stages;
  for (const auto& stage : plan) stages += (stages.empty() ? "" : "+") + std::string(stage.name);

  // Shared with the handler and the model caches, which the QueueWorker and the stages keep.
  std::shared_ptr<WorkerMetrics> metrics;
  try {
    metrics = start_metrics(config, stages, log);
  } catch (const std::invalid_argument& error) {
    log.error("bad --metrics-address: " + std::string(error.what()));
    return 2;
  }
  StageSettings settings{
      ModelStore(config.models),
      compute_options_from(config.threads, config.batch_size, config.engine, config.precision),
      {},
      [metrics, &log](const ModelConfig& model, std::chrono::duration<double> took) {
        metrics->model_loaded(took);
        log.info("loaded model " + model.name + " version " + model.version + " in " +
                 std::to_string(took.count()) + " s");
      }};
  if (plan.front().input == BatchKind::images) {
    try {
      settings.objects = std::make_shared<S3Client>(config.s3);
    } catch (const std::invalid_argument& error) {
      log.error(std::string("bad object storage settings: ") + error.what());
      return 2;
    }
    // Which server and whether requests are signed; never who signs them.
    log.info("images sent as object references are fetched from " + config.s3.endpoint_or_default() +
             " (region " + config.s3.region + ", " +
             (config.s3.uses_path_style() ? "path-style" : "virtual-hosted") + ", " +
             (config.s3.credentials.anonymous() ? "unsigned requests" : "signed requests") + ")");
  }
  settings.limits.max_pixels = config.max_pixels;
  settings.limits.max_file_bytes = static_cast<std::size_t>(config.max_file_bytes);
  // The intra-op thread count is process-wide: set it where a stage runs the network.
  for (const auto& stage : plan) {
    if (stage.output == BatchKind::features) configure_compute(settings.compute);
  }

  WorkerOptions options;
  options.queue = plan.front().queue;
  options.prefetch = config.prefetch;
  options.connection.heartbeat = std::chrono::seconds(config.heartbeat_seconds);
  options.connection.delivery_limit = config.delivery_limit;
  options.connection.quorum_group_size = config.quorum_group_size;
  options.connection.client_name = "imgpipe-" + config.role;
  options.on_held_changed = [metrics](std::size_t held) { metrics->deliveries_in_flight(held); };
  options.on_cancelled_dropped = [metrics] { metrics->cancelled_dropped(); };
  const std::string endpoint = metrics->endpoint();
  log.info("starting " + stages + " on " + options.queue + " via " + address.redacted() + ", models " +
           settings.store.root().string() + ", forward batch " +
           (config.batch_size > 0 ? std::to_string(config.batch_size) : std::string("from model.json")) +
           ", prefetch " + std::to_string(config.prefetch) + ", metrics " +
           (endpoint.empty() ? std::string("off") : "http://" + endpoint + "/metrics"));
  try {
    CodecLimits codec_limits;
    codec_limits.max_message_bytes = static_cast<std::size_t>(config.max_message_bytes);
    DeliveryHandler handler = make_stage_handler(make_chain(first, role->name, settings), options.queue, log,
                                                 metrics, codec_limits);
    inject_faults(faults, handler, options, log);
    QueueWorker worker(address, options, std::move(handler), log.as_log_fn());
    worker.run(stop);
    const auto stats = worker.stats();
    log.info("stopped after " + std::to_string(stats.handled) + " messages, " +
             std::to_string(stats.reconnects) + " reconnects, " + std::to_string(stats.dropped_cancelled) +
             " dropped of cancelled jobs");
  } catch (const std::exception& error) {
    log.error(std::string("worker failed: ") + error.what());
    return 1;
  }
  return 0;
}

}  // namespace imgpipe
