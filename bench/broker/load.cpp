#include "load.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "imgpipe/job/batching.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"
#include "imgpipe/transport/amqp/job_channel.hpp"
#include "imgpipe/transport/amqp/queue_worker.hpp"

namespace imgpipe::bench {

namespace {

using namespace std::chrono_literals;

// Warnings and errors only: a reconnect during a measurement is worth seeing, the usual chatter is not.
void log_line(std::string_view level, std::string_view line) {
  if (level == "warn" || level == "error")
    std::cerr << "imgpipe-broker-bench: " << level << ": " << line << "\n";
}

// The first failure of any client thread, rethrown on the main thread.
class FirstFailure {
 public:
  void record(const std::string& what) {
    std::lock_guard lock(mutex_);
    if (!what_) what_ = what;
    failed_ = true;
  }
  bool failed() const { return failed_; }
  void rethrow() {
    std::lock_guard lock(mutex_);
    if (what_) throw std::runtime_error(*what_);
  }

 private:
  std::mutex mutex_;
  std::optional<std::string> what_;
  std::atomic<bool> failed_{false};
};

// A thread that records what it threw instead of terminating the program.
std::thread guarded(FirstFailure& failures, std::function<void()> body) {
  return std::thread([&failures, body = std::move(body)] {
    try {
      body();
    } catch (const std::exception& error) {
      failures.record(error.what());
    }
  });
}

// One queue with its publisher and its consumers.
struct Lane {
  std::string queue;
  std::atomic<std::uint64_t> published{0};
  std::vector<std::unique_ptr<QueueWorker>> workers;  // stage queues
  std::unique_ptr<JobChannel> job;                    // result queues: the job that reads its results
  std::atomic<std::uint64_t> job_consumed{0};

  std::uint64_t consumed() const {
    std::uint64_t sum = job_consumed.load();
    for (const auto& worker : workers) sum += worker->stats().handled;
    return sum;
  }
};

PublisherOptions publisher_options() {
  PublisherOptions options;
  options.client_name = "imgpipe-broker-bench";
  return options;
}

void publish_until(Lane& lane, const LoadOptions& options, const Messages& messages,
                   std::uint64_t max_backlog, const std::atomic<bool>& stop) {
  JobChannel channel(options.address, publisher_options(), new_job_id(), log_line);
  std::size_t next = 0;
  while (!stop) {
    if (lane.published - lane.consumed() >= max_backlog) {
      std::this_thread::sleep_for(200us);
      continue;
    }
    OutgoingMessage message{
        lane.queue, messages.bodies[next++ % messages.bodies.size()], {{headers::job, "bench"}}};
    stamp_published(message.headers);
    channel.publish(std::move(message), options.confirm_window);
    ++lane.published;
  }
  channel.wait_confirms(60s);
  channel.delete_result_queue();
}

// What a job's publisher does with its results: take each, ack it.
void read_results_until(Lane& lane, const std::atomic<bool>& stop) {
  while (!stop) {
    if (auto result = lane.job->next_result(100ms)) {
      lane.job->ack(result->delivery_tag);
      ++lane.job_consumed;
    }
  }
  lane.job->delete_result_queue();
}

// Enough that every consumer finds its prefetch full and the next messages ready, so neither side waits for
// the other; beyond that as much as max_backlog_bytes allows, up to a few thousand. Not the confirm window:
// a worker has at most a prefetch's outputs unconfirmed, and a backlog of 68 pixel messages per queue (the
// window's 64 + 4) made the broker hold 1.3 GB over four queues and slowed it several-fold.
std::uint64_t backlog_limit(const LoadOptions& options, const Messages& messages) {
  const int prefetch = options.queue_kind == QueueKind::result ? 64 : options.consumers * options.prefetch;
  const auto floor = static_cast<std::uint64_t>(2 * prefetch);
  const auto by_bytes = static_cast<std::uint64_t>(static_cast<double>(options.max_backlog_bytes) /
                                                   std::max(messages.mean_bytes, 1.0));
  return std::max(floor, std::min<std::uint64_t>(by_bytes, 4096));
}

void sleep_watching(double seconds, const FirstFailure& failures) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until && !failures.failed()) std::this_thread::sleep_for(20ms);
}

}  // namespace

LoadResult run_load(const LoadOptions& options, const Messages& messages) {
  const std::string run = new_job_id();
  BrokerOptions broker_options;
  broker_options.client_name = "imgpipe-broker-bench";
  std::vector<std::unique_ptr<Lane>> lanes;
  for (int q = 0; q < options.queues; ++q) {
    auto lane = std::make_unique<Lane>();
    if (options.queue_kind == QueueKind::stage) {
      lane->queue = "imgpipe.bench." + run + "." + std::to_string(q);
      for (int c = 0; c < options.consumers; ++c) {
        WorkerOptions worker;
        worker.queue = lane->queue;  // not a stage of the graph: declared alone, as a stage queue is
        worker.prefetch = options.prefetch;
        worker.confirm_window = options.confirm_window;
        worker.connection = broker_options;
        // No outputs: the delivery is acked at once, as a worker's is once its outputs are confirmed (those
        // outputs are the next queue's publishes, measured there).
        lane->workers.push_back(std::make_unique<QueueWorker>(
            options.address, worker, [](const IncomingMessage&) { return std::vector<OutgoingMessage>{}; },
            log_line));
      }
      BrokerSession(options.address, broker_options).declare_stage_queue(lane->queue);
    } else {
      lane->job = std::make_unique<JobChannel>(options.address, publisher_options(), new_job_id(), log_line);
      lane->queue = lane->job->result_queue();
    }
    lanes.push_back(std::move(lane));
  }

  FirstFailure failures;
  std::atomic<bool> stop_consumers{false};
  std::atomic<bool> stop_publishers{false};
  std::vector<std::thread> consumers;
  std::vector<std::thread> publishers;
  for (auto& lane : lanes) {
    for (auto& worker : lane->workers)
      consumers.push_back(
          guarded(failures, [&worker = *worker, &stop_consumers] { worker.run(stop_consumers); }));
    if (lane->job)
      consumers.push_back(
          guarded(failures, [&lane = *lane, &stop_consumers] { read_results_until(lane, stop_consumers); }));
  }
  const auto max_backlog = backlog_limit(options, messages);
  for (auto& lane : lanes) {
    publishers.push_back(
        guarded(failures, [&lane = *lane, &options, &messages, max_backlog, &stop_publishers] {
          publish_until(lane, options, messages, max_backlog, stop_publishers);
        }));
  }

  auto totals = [&lanes] {
    std::pair<std::uint64_t, std::uint64_t> sum{0, 0};  // consumed, published
    for (const auto& lane : lanes) {
      sum.first += lane->consumed();
      sum.second += lane->published;
    }
    return sum;
  };
  sleep_watching(options.warmup_seconds, failures);
  const auto start_counts = totals();
  const auto start_cpu = sample_cpu(options.broker_pid);
  sleep_watching(options.seconds, failures);
  const auto end_counts = totals();
  const auto end_cpu = sample_cpu(options.broker_pid);
  const auto broker_rss = options.broker_pid > 0 ? resident_megabytes(options.broker_pid) : std::nullopt;

  stop_publishers = true;
  for (auto& thread : publishers) thread.join();
  stop_consumers = true;
  for (auto& thread : consumers) thread.join();
  // The queues go even after a failure: on a shared broker they would otherwise stay, messages and all.
  if (options.queue_kind == QueueKind::stage) {
    try {
      BrokerSession session(options.address, broker_options);
      for (const auto& lane : lanes) session.delete_queue(lane->queue);
    } catch (const std::exception& error) {
      if (!failures.failed()) throw;
      log_line("warn", std::string("could not delete the bench queues: ") + error.what());
    }
  }
  failures.rethrow();

  LoadResult result;
  result.seconds = end_cpu.wall - start_cpu.wall;
  result.consumed = end_counts.first - start_counts.first;
  result.published = end_counts.second - start_counts.second;
  result.backlog_after = end_counts.second - end_counts.first;
  result.cpu = cpu_between(start_cpu, end_cpu);
  result.broker_rss_mb = broker_rss;
  return result;
}

}  // namespace imgpipe::bench
