// The flags every worker takes (CLI11, header-only so only the mains pay for it).
#pragma once

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "imgpipe/models/model_store.hpp"
#include "imgpipe/ops/secret_url_flags.hpp"
#include "imgpipe/ops/stop_signal.hpp"
#include "imgpipe/storage/s3_flags.hpp"
#include "imgpipe/worker/run_worker.hpp"

namespace imgpipe {

// --broker is resolved after parsing (broker_flags.resolve), where its password may come from.
inline void add_worker_flags(CLI::App& app, WorkerConfig& config, SecretUrlFlags& broker_flags) {
  config.models = default_model_dir();
  add_secret_url_flags(
      app, broker_flags,
      std::string("Broker URL, amqp[s]://user@host:port/vhost, or several for a cluster: "
                  "amqp[s]://user@host1:port,host2:port/vhost (default ") +
          kDefaultBroker + ")");
  app.add_option("--models", config.models, "Model store folder")
      ->envname("IMGPIPE_MODELS")
      ->capture_default_str();
  app.add_option("--batch-size", config.batch_size,
                 "Images per forward pass (0 = the model's own, from model.json; 32 if it has none)")
      ->envname("IMGPIPE_BATCH_SIZE")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  app.add_option("--engine", config.engine,
                 "Engine of the forward pass (default: the model's own, from model.json)")
      ->envname("IMGPIPE_ENGINE")
      ->check(CLI::IsMember({"libtorch", "openvino"}));
  app.add_option(
         "--precision", config.precision,
         "Arithmetic of the forward pass: f32, or bf16 on the openvino engine (default: the model's own)")
      ->envname("IMGPIPE_PRECISION")
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--prefetch", config.prefetch, "Unacknowledged messages held at once")
      ->envname("IMGPIPE_PREFETCH")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--threads", config.threads, "Compute threads (0 = one per core)")
      ->envname("IMGPIPE_THREADS")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--heartbeat", config.heartbeat_seconds, "AMQP heartbeat in seconds")
      ->envname("IMGPIPE_HEARTBEAT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--delivery-limit", config.delivery_limit,
                 "Deliveries before a failing message is dead-lettered")
      ->envname("IMGPIPE_DELIVERY_LIMIT")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--quorum-group-size", config.quorum_group_size,
                 "Replicas of each stage queue in a cluster (x-quorum-initial-group-size); 0: the broker's "
                 "default (3, or every node of a smaller cluster). Every worker and submit must agree")
      ->envname("IMGPIPE_QUORUM_GROUP_SIZE")
      ->check(CLI::Range(0, 99))
      ->capture_default_str();
  app.add_option("--max-pixels", config.max_pixels, "Largest source image accepted, in pixels")
      ->envname("IMGPIPE_MAX_PIXELS")
      ->capture_default_str();
  app.add_option("--max-file-bytes", config.max_file_bytes,
                 "Largest image accepted, in bytes: an object fetched from storage, or a file's bytes")
      ->envname("IMGPIPE_MAX_FILE_BYTES")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{512} << 20))
      ->capture_default_str();
  app.add_option("--max-message-bytes", config.max_message_bytes,
                 "Largest message decoded; bigger ones are dead-lettered with the reason")
      ->envname("IMGPIPE_MAX_MESSAGE_BYTES")
      ->check(CLI::Range(std::int64_t{1024}, std::int64_t{512} << 20))
      ->capture_default_str();
  app.add_option(
         "--metrics-port", config.metrics_port,
         "Port of the Prometheus /metrics endpoint (0 = off); by default, the next free one from 9464 "
         "when workers share a host")
      ->envname("IMGPIPE_METRICS_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str()
      ->each([&config](const std::string&) { config.metrics_port_chosen = true; });
  app.add_option("--metrics-address", config.metrics_address,
                 "Address the /metrics endpoint listens on (containers use 0.0.0.0)")
      ->envname("IMGPIPE_METRICS_ADDRESS")
      ->capture_default_str();
  // A function option rather than CLI11's enum mapping, whose help and parser also accept the numbers 0
  // and 1.
  app.add_option_function<std::string>(
         "--log-format",
         [&config](const std::string& format) {
           config.log_format = format == "json" ? LogFormat::json : LogFormat::text;
         },
         "Log lines as text or as JSON objects")
      ->envname("IMGPIPE_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->default_str("text");
  app.add_flag("-v,--verbose", config.verbose, "Log debug lines");
}

// Fault injection for tests/fault and tests/e2e, hidden from --help (an empty group): a deployment has no use
// for them.
inline void add_fault_injection_flags(CLI::App& app, FaultInjection& faults) {
  app.add_option("--test-fail-marker", faults.fail_marker)->group("");
  app.add_option(
         "--fault-crash-before-ack", faults.crash_before_ack,
         "Test only: SIGKILL itself after the outputs of the Nth delivery are confirmed, before its ack")
      ->envname("IMGPIPE_FAULT_CRASH_BEFORE_ACK")
      ->group("");
  app.add_option_function<int>(
         "--fault-handler-delay-ms",
         [&faults](int millis) { faults.handler_delay = std::chrono::milliseconds(millis); },
         "Test only: sleep this long before handling each delivery (a slow batch)")
      ->envname("IMGPIPE_FAULT_HANDLER_DELAY_MS")
      ->check(CLI::Range(0, 3600000))
      ->group("");
}

// Parses, runs the worker, and maps CLI11's outcome to our exit codes (2 = usage error).
inline int worker_main(int argc, char** argv, const char* role, const char* description,
                       bool can_fuse_preprocess = false) {
  StopSignal stop;
  CLI::App app(description, std::string("imgpipe-") + role);
  WorkerConfig config;
  config.role = role;
  SecretUrlFlags broker_flags{broker_url_option()};
  add_worker_flags(app, config, broker_flags);
  S3Flags s3_flags;
  add_s3_flags(app, s3_flags);
  FaultInjection faults;
  add_fault_injection_flags(app, faults);
  if (can_fuse_preprocess) {
    app.add_flag("--with-preprocess", config.with_preprocess,
                 "Also run the preprocess stage here, consuming encoded images directly (fused node)")
        ->envname("IMGPIPE_WITH_PREPROCESS");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  try {
    config.broker = broker_flags.resolve(kDefaultBroker);
    config.s3 = s3_flags.resolve();
  } catch (const CredentialError& error) {
    std::cerr << app.get_name() << ": " << error.what() << "\n";
    return 2;
  }
  return run_stage_worker(config, stop.flag(), faults);
}

}  // namespace imgpipe
