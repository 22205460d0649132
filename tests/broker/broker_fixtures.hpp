// Helpers for the broker specs: unique names, a thread that runs a QueueWorker, captured transport logs.
#pragma once

#include "imgpipe/transport/amqp/broker.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"
#include "imgpipe/transport/amqp/job_channel.hpp"
#include "imgpipe/transport/amqp/queue_worker.hpp"
#include "test_support.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace imgpipe::test {

// Queue names and job ids unique to one test run, so specs never see each other's messages.
inline std::string unique_name(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  std::random_device entropy;
  return "test." + prefix + "." + std::to_string(entropy()) + "." + std::to_string(counter++);
}

inline BrokerAddress test_address() {
  return BrokerAddress::parse(broker_url());
}

inline PublisherOptions test_options() {
  PublisherOptions options;
  options.heartbeat = std::chrono::seconds(2);
  options.connect_timeout = std::chrono::seconds(5);
  options.give_up_after = std::chrono::seconds(60);
  options.client_name = "imgpipe-broker-tests";
  return options;
}

inline OutgoingMessage text_message(const std::string& queue, const std::string& text, Headers headers = {}) {
  return {queue, std::vector<std::uint8_t>(text.begin(), text.end()), std::move(headers)};
}

inline std::string text_of(const IncomingMessage& message) {
  return {message.body.begin(), message.body.end()};
}

// Thread-safe LogFn that keeps every line; IMGPIPE_TEST_LOG=1 also prints them.
class LogCapture {
 public:
  LogFn fn() {
    return [this](std::string_view level, std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.push_back(std::string(level) + ": " + std::string(line));
      if (std::getenv("IMGPIPE_TEST_LOG") != nullptr) std::fprintf(stderr, "%s\n", lines_.back().c_str());
    };
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::size_t count(const std::string& level) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& line : lines_) n += line.rfind(level + ": ", 0) == 0 ? 1 : 0;
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

// Runs QueueWorker::run on a thread; stop() (or the destructor) sets the stop flag and joins.
class WorkerThread {
 public:
  WorkerThread(WorkerOptions options, DeliveryHandler handler, LogFn log)
      : WorkerThread(test_address(), std::move(options), std::move(handler), std::move(log)) {}
  WorkerThread(BrokerList brokers, WorkerOptions options, DeliveryHandler handler, LogFn log)
      : worker_(std::move(brokers), std::move(options), std::move(handler), std::move(log)), thread_([this] {
          try {
            worker_.run(stop_);
          } catch (...) {
            failure_ = std::current_exception();
          }
        }) {}
  ~WorkerThread() { stop_join(); }
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Rethrows whatever run() threw.
  void stop() {
    stop_join();
    if (failure_) std::rethrow_exception(failure_);
  }
  QueueWorker::Stats stats() const { return worker_.stats(); }

 private:
  void stop_join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  std::atomic<bool> stop_{false};
  std::exception_ptr failure_;
  QueueWorker worker_;
  std::thread thread_;
};

inline WorkerOptions worker_options(const std::string& queue) {
  WorkerOptions options;
  options.queue = queue;
  options.prefetch = 4;
  options.max_backoff = std::chrono::seconds(2);
  options.connection = test_options();
  return options;
}

// Polls `condition` every 50 ms until it holds or `timeout` passes; returns its last value.
template <typename Condition>
bool eventually(std::chrono::milliseconds timeout, Condition&& condition) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace imgpipe::test
