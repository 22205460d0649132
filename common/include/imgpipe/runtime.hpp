// Process-level plumbing shared by the executables: default locations, stop signals, the worker loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "imgpipe/logging.hpp"

namespace imgpipe {

// IMGPIPE_MODELS is read by the flag parser; this is the fallback compiled in (the source tree's models/).
std::string default_model_dir();
inline constexpr const char* kDefaultBroker = "amqp://guest:guest@localhost:5672/";

// Turns SIGINT and SIGTERM into a flag, from a thread that waits for them (no signal-handler globals).
// Construct it in main before starting any other thread, so every thread inherits the blocked mask.
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  const std::atomic<bool>& flag() const { return stop_; }

 private:
  std::atomic<bool> stop_{false};
  std::thread waiter_;
};

struct WorkerConfig {
  std::string role;  // preprocess, feature, classify
  std::string broker = kDefaultBroker;
  std::string models;
  int batch_size = 32;
  int prefetch = 4;
  int threads = 0;
  int heartbeat_seconds = 30;
  int delivery_limit = 5;
  bool with_preprocess = false;
  bool verbose = false;
  std::int64_t max_pixels = 100'000'000;
  std::int64_t max_file_bytes = 64 << 20;
  // Prometheus /metrics; port 0 turns it off. Loopback by default so a worker started by hand exposes
  // nothing to the network; containers set IMGPIPE_METRICS_ADDRESS=0.0.0.0 for the scraper to reach them.
  int metrics_port = 9464;
  std::string metrics_address = "127.0.0.1";
  LogFormat log_format = LogFormat::text;
  // Largest message a worker decodes; bigger ones are dead-lettered with the reason. The broker's own
  // max_message_size (128 MiB by default in RabbitMQ 3.10) refuses bigger publishes before that.
  std::int64_t max_message_bytes = 512 << 20;
  // Test hook: a delivery whose body contains this text makes the handler throw, as a stage bug would,
  // so a test can follow a poison message through the delivery limit to its error lines. Empty: off.
  std::string test_fail_marker;
  // Fault injection for tests/fault, 0 = off (the hidden flags --fault-crash-before-ack and
  // --fault-handler-delay-ms).
  std::uint64_t fault_crash_before_ack = 0;
  int fault_handler_delay_ms = 0;
};

// Runs one worker until SIGTERM/SIGINT; returns the process exit code.
int run_stage_worker(const WorkerConfig& config, const std::atomic<bool>& stop);

}  // namespace imgpipe
