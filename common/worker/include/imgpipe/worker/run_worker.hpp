// One stage worker process: its configuration and its loop, from flags to a QueueWorker over a stage chain.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "imgpipe/ops/broker_address.hpp"
#include "imgpipe/ops/logging.hpp"
#include "imgpipe/storage/s3_config.hpp"
#include "imgpipe/worker/fault_injection.hpp"

namespace imgpipe {

inline constexpr int kDefaultMetricsPort = 9464;
inline constexpr int kMetricsPortsTried = 16;

struct WorkerConfig {
  std::string role;  // the stage it runs: a stage of the graph (pipeline/stage_graph.hpp)
  std::string broker = kDefaultBroker;
  std::string models;
  int batch_size = 0;     // images per forward pass; 0 = the model's own (model.json), else 32
  std::string engine;     // "libtorch" or "openvino"; empty = the model's own
  std::string precision;  // "f32" or "bf16"; empty = the model's own
  int prefetch = 4;
  int threads = 0;
  int heartbeat_seconds = 30;
  int delivery_limit = 5;
  int quorum_group_size = 0;  // x-quorum-initial-group-size of the stage queues; 0 = the broker's default
  bool with_preprocess = false;  // also run the stages before `role`, from the first (the fused node)
  bool verbose = false;
  std::int64_t max_pixels = 100'000'000;
  std::int64_t max_file_bytes = 64 << 20;
  // Prometheus /metrics; port 0 turns it off. Loopback by default so a worker started by hand exposes
  // nothing to the network; containers set IMGPIPE_METRICS_ADDRESS=0.0.0.0 for the scraper to reach them.
  // With the default port, workers sharing a host take the next free ports (kMetricsPortsTried of them);
  // a port the user chose (metrics_port_chosen) is tried alone. Either way a port that cannot be had costs
  // the metrics, never the worker.
  int metrics_port = kDefaultMetricsPort;
  bool metrics_port_chosen = false;
  std::string metrics_address = "127.0.0.1";
  LogFormat log_format = LogFormat::text;
  // Largest message a worker decodes; bigger ones are dead-lettered with the reason. The broker's own
  // max_message_size (128 MiB by default in RabbitMQ 3.10) refuses bigger publishes before that.
  std::int64_t max_message_bytes = 512 << 20;
  // Where images sent as object references are fetched from (preprocess), credentials resolved.
  S3Config s3{};
};

// Runs one worker until SIGTERM/SIGINT; returns the process exit code. `faults` is for tests only.
int run_stage_worker(const WorkerConfig& config, const std::atomic<bool>& stop,
                     const FaultInjection& faults = {});

}  // namespace imgpipe
