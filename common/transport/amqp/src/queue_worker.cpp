// QueueWorker: the IO thread (the caller of run()) owns the connection; a ComputeSlot runs the handler.
// Per connection, a WorkerSession tracks what the broker has given us and what we owe it.
#include "imgpipe/transport/amqp/queue_worker.hpp"

#include "amqp_connection.hpp"
#include "backoff.hpp"
#include "compute_slot.hpp"
#include "confirm_tracker.hpp"
#include "event_fd.hpp"
#include "imgpipe/messages/cancellation.hpp"
#include "node_cycle.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "topology.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

namespace imgpipe {

namespace {

using namespace std::chrono_literals;

struct WorkerCounters {
  std::atomic<std::uint64_t> handled{0};
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> dropped_cancelled{0};
  mutable std::mutex node_mutex;
  std::string node;  // guarded by node_mutex: stats() reads it from other threads
  std::uint64_t confirmed_deliveries = 0;  // IO thread only: deliveries whose outputs were all confirmed
};

void emit(const LogFn& log, std::string_view level, const std::string& line) {
  if (log) log(level, line);
}

// Cancel records are tiny: take the stream's retained tail in large gulps.
constexpr std::uint16_t cancellation_prefetch = 256;
// The broker sends a stream's retained records right after the consumer attaches; once none came for this
// long, the tail is taken to be read (the stream keeps no "end" marker that AMQP 0-9-1 could ask for).
constexpr auto cancellation_quiet = 200ms;
constexpr auto cancellation_catch_up_limit = 3s;

std::string job_of(const IncomingMessage& message) {
  const auto found = message.headers.find(headers::job);
  return found == message.headers.end() ? std::string() : found->second;
}

// Everything that belongs to one connection: delivery tags and publish sequence numbers mean nothing on
// the next one, so a reconnect simply discards this object.
class WorkerSession {
 public:
  WorkerSession(const BrokerAddress& address, const WorkerOptions& options, const LogFn& log,
                WorkerCounters& counters, CancelledJobs& cancelled, std::uint64_t epoch, ComputeSlot& compute,
                EventFd& wake)
      : options_(options),
        log_(log),
        counters_(counters),
        cancelled_(cancelled),
        epoch_(epoch),
        compute_(compute),
        wake_(wake),
        connection_(address, options.connection) {
    // A pipeline worker declares every stage queue, so its outputs never go to a queue that does not exist
    // yet. A worker on a private queue (tests, tools) must not impose its delivery limit on the pipeline.
    if (is_stage_queue(options.queue)) {
      topology::declare_pipeline(connection_, options.connection);
      // Before the stage queue: a worker that starts after a cancel must know of it before the first
      // delivery of that job reaches it.
      cancellations_tag_ = topology::follow_cancellations(connection_, cancellation_prefetch, log_);
      if (!cancellations_tag_.empty()) catch_up_on_cancellations();
    } else if (options.queue == queues::dead) {  // a dead-letter reader: the queue is a classic one
      topology::declare_dead_letters(connection_);
    } else {
      topology::declare_dead_letters(connection_);
      topology::declare_stage_queue(connection_, options.queue, options.connection);
    }
    connection_.set_prefetch(static_cast<std::uint16_t>(std::clamp(options.prefetch, 1, 65535)));
    connection_.enable_confirms();
    consumer_tag_ = connection_.consume(options.queue);
  }

  // Returns once `stop` is set and the delivery in flight is acked; throws BrokerError on connection loss.
  void run(const std::atomic<bool>& stop) {
    const auto idle_wait = poll_interval();
    bool stopping = false;
    std::chrono::steady_clock::time_point stop_deadline;
    while (true) {
      while (auto event = connection_.next_event(0ms)) handle(std::move(*event), stopping);
      if (auto result = compute_.take()) finish(std::move(*result));
      report_held();

      if (stop && !stopping) {
        stopping = true;
        // A broker that never confirms (a quorum queue without a leader) must not block shutdown forever.
        stop_deadline = std::chrono::steady_clock::now() + options_.connection.rpc_timeout;
        // Deliveries still buffered go back to the queue when the channel closes.
        connection_.cancel(consumer_tag_);
      }
      if (stopping && !compute_.busy() && awaiting_.empty()) return;
      if (stopping && !compute_.busy() && std::chrono::steady_clock::now() >= stop_deadline) {
        emit(log_, "warn",
             "stopping with " + std::to_string(unconfirmed_.size()) +
                 " publishes unconfirmed; their inputs stay unacked and will be redelivered");
        return;
      }
      if (!stopping && !compute_.busy() && !buffered_.empty() &&
          unconfirmed_.size() < static_cast<std::size_t>(std::max(options_.confirm_window, 1))) {
        compute_.submit(epoch_, std::move(buffered_.front()));
        buffered_.pop_front();
      }
      wait_for_io(idle_wait);
    }
  }

  ~WorkerSession() {
    // Whatever this connection held goes back to the broker with it.
    if (held_ != 0 && options_.on_held_changed) options_.on_held_changed(0);
  }
  WorkerSession(const WorkerSession&) = delete;
  WorkerSession& operator=(const WorkerSession&) = delete;

 private:
  struct PendingPublish {
    std::uint64_t delivery_tag = 0;
    OutgoingMessage message;
    int attempts = 1;
  };

  void catch_up_on_cancellations() {
    const auto limit = std::chrono::steady_clock::now() + cancellation_catch_up_limit;
    while (std::chrono::steady_clock::now() < limit) {
      auto event = connection_.next_event(cancellation_quiet);
      if (!event) return;
      handle(std::move(*event), false);
    }
  }

  bool is_cancelled(const IncomingMessage& delivery) const {
    const std::string job = job_of(delivery);
    return !job.empty() && cancelled_.contains(job);
  }

  // Acked, so the broker forgets it: nobody waits for this job's results any more.
  void drop_cancelled(const IncomingMessage& delivery) {
    connection_.ack(delivery.delivery_tag);
    ++counters_.dropped_cancelled;
    if (options_.on_cancelled_dropped) options_.on_cancelled_dropped();
  }

  void take_cancel_record(const IncomingMessage& delivery) {
    connection_.ack(delivery.delivery_tag);  // a stream consumer's acks only grant credit for more
    const auto record = decode_cancel(delivery.body);
    if (!record) {
      emit(log_, "warn",
           std::string("ignoring a message on ") + queues::cancelled + " that is not a cancel record");
      return;
    }
    if (!cancelled_.add(record->job_id)) return;  // known already: read again after a reconnect
    std::size_t dropped = 0;
    for (auto it = buffered_.begin(); it != buffered_.end();) {
      if (job_of(*it) == record->job_id) {
        drop_cancelled(*it);
        it = buffered_.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
    emit(log_, "info",
         "job " + record->job_id + " was cancelled" + (record->by.empty() ? "" : " by " + record->by) +
             ": its deliveries are dropped unprocessed (" + std::to_string(dropped) + " buffered here)");
  }

  // A delivery is in exactly one place: buffered, in the compute slot, or awaiting its confirms.
  void report_held() {
    if (!options_.on_held_changed) return;
    const std::size_t held = buffered_.size() + (compute_.busy() ? 1 : 0) + awaiting_.size();
    if (held == held_) return;
    held_ = held;
    options_.on_held_changed(held);
  }

  // Short enough that rabbitmq-c, called after every wait, sends heartbeats on time.
  std::chrono::milliseconds poll_interval() const {
    const auto heartbeat =
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.connection.heartbeat);
    if (heartbeat <= 0ms) return 200ms;
    return std::clamp(heartbeat / 4, 10ms, 200ms);
  }

  void wait_for_io(std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{connection_.socket_fd(), POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
    const int ready = ::poll(fds, 2, static_cast<int>(timeout.count()));
    if (ready < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
    if (ready > 0 && (fds[1].revents & POLLIN) != 0) wake_.drain();
  }

  void handle(amqp::Event event, bool stopping) {
    if (auto* delivery = std::get_if<IncomingMessage>(&event)) {
      if (!cancellations_tag_.empty() && delivery->consumer_tag == cancellations_tag_) {
        take_cancel_record(*delivery);
      } else if (stopping) {
        // While stopping, a delivery that raced the cancel stays unacked and returns to the queue on close.
      } else if (is_cancelled(*delivery)) {
        emit(log_, "debug", "dropped a delivery of cancelled job " + job_of(*delivery));
        drop_cancelled(*delivery);
      } else {
        buffered_.push_back(std::move(*delivery));
      }
    } else if (const auto* confirm = std::get_if<amqp::Confirm>(&event)) {
      settle(*confirm);
    } else if (const auto* returned = std::get_if<amqp::Returned>(&event)) {
      emit(log_, "warn",
           "broker returned a message for " + returned->routing_key + ": " +
               std::to_string(returned->reply_code) + " " + returned->reply_text);
    } else if (const auto* blocked = std::get_if<amqp::Blocked>(&event)) {
      // Nothing to do but wait: the broker keeps our connection and our deliveries, and reads our publishes
      // again once the alarm clears. No confirm timeout runs meanwhile.
      emit(log_, "warn",
           "the broker blocked our publishes (" + blocked->reason + "); waiting for it to clear");
    } else if (std::holds_alternative<amqp::Unblocked>(event)) {
      emit(log_, "info", "the broker unblocked our publishes");
    } else {
      throw BrokerUnreachable("the broker cancelled our consumer of " + options_.queue);
    }
  }

  void finish(ComputeSlot::Result result) {
    if (result.connection_epoch != epoch_) {
      emit(log_, "info", "dropping a result from a lost connection; the broker redelivers its input");
      return;
    }
    if (result.error) {
      emit(log_, "error",
           "handler failed on a delivery from " + options_.queue + ": " + *result.error +
               "; rejecting it with requeue (the delivery limit dead-letters it if it keeps failing)");
      connection_.reject(result.delivery_tag, true);
      return;
    }
    if (result.outputs.empty()) {
      acknowledge(result.delivery_tag);
      return;
    }
    // Cancelled while it computed: nobody reads its results, and the next stage would only drop it.
    const bool of_cancelled_job =
        std::any_of(result.outputs.begin(), result.outputs.end(), [&](const OutgoingMessage& out) {
          const auto job = out.headers.find(headers::job);
          return job != out.headers.end() && cancelled_.contains(job->second);
        });
    if (of_cancelled_job) {
      acknowledge(result.delivery_tag);
      return;
    }
    awaiting_[result.delivery_tag] = result.outputs.size();
    for (auto& output : result.outputs) {
      unconfirmed_.publish(connection_, PendingPublish{result.delivery_tag, std::move(output), 1});
    }
  }

  void acknowledge(std::uint64_t delivery_tag) {
    connection_.ack(delivery_tag);
    ++counters_.handled;
  }

  // The moment between "outputs confirmed" and "input acked", which WorkerOptions::before_ack may watch.
  void outputs_confirmed(std::uint64_t delivery_tag) {
    ++counters_.confirmed_deliveries;
    if (options_.before_ack) options_.before_ack(counters_.confirmed_deliveries);
    acknowledge(delivery_tag);
  }

  void settle(const amqp::Confirm& confirm) {
    // Take the settled publishes out first: a nack republishes under new sequence numbers.
    for (auto& publish : unconfirmed_.settle(confirm)) {
      const auto waiting = awaiting_.find(publish.delivery_tag);
      if (waiting == awaiting_.end()) continue;  // its input was already rejected
      if (confirm.ack) {
        ++counters_.published;
        if (--waiting->second == 0) {
          awaiting_.erase(waiting);
          outputs_confirmed(publish.delivery_tag);
        }
      } else if (!unconfirmed_.retry_nacked(connection_, publish, log_)) {
        emit(log_, "error",
             "broker nacked a publish to " + publish.message.routing_key + " " +
                 std::to_string(amqp::max_publish_attempts) + " times; requeueing its input");
        awaiting_.erase(waiting);
        connection_.reject(publish.delivery_tag, true);
      }
    }
  }

  const WorkerOptions& options_;
  const LogFn& log_;
  WorkerCounters& counters_;
  CancelledJobs& cancelled_;
  const std::uint64_t epoch_;
  ComputeSlot& compute_;
  EventFd& wake_;
  amqp::Connection connection_;
  std::string consumer_tag_;
  std::string cancellations_tag_;                  // empty: this worker does not follow cancellations
  std::deque<IncomingMessage> buffered_;           // delivered, not yet handed to the handler
  std::map<std::uint64_t, std::size_t> awaiting_;  // delivery tag -> outputs not yet confirmed
  amqp::ConfirmTracker<PendingPublish> unconfirmed_;
  std::size_t held_ = 0;  // last count given to on_held_changed
};

}  // namespace

struct QueueWorker::Impl {
  BrokerList brokers;
  WorkerOptions options;
  DeliveryHandler handler;
  LogFn log;
  WorkerCounters counters;
  CancelledJobs cancelled;  // outlives connections: each reconnect reads the stream again

  void set_node(std::string node) {
    std::lock_guard lock(counters.node_mutex);
    counters.node = std::move(node);
  }
};

QueueWorker::QueueWorker(BrokerList brokers, WorkerOptions options, DeliveryHandler handler, LogFn log)
    : impl_(std::make_unique<Impl>()) {
  impl_->brokers = std::move(brokers);
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->log = std::move(log);
}

QueueWorker::~QueueWorker() = default;

void QueueWorker::run(const std::atomic<bool>& stop) {
  Impl& w = *impl_;
  EventFd wake;
  ComputeSlot compute(w.handler, wake);
  Backoff backoff(250ms, w.options.max_backoff);
  amqp::NodeCycle nodes(w.brokers, w.options.connection.first_node);
  const bool several = nodes.size() > 1;
  std::uint64_t epoch = 0;
  bool connected_before = false;
  while (!stop) {
    const BrokerAddress& node = nodes.current();
    bool connected = false;
    try {
      WorkerSession session(node, w.options, w.log, w.counters, w.cancelled, ++epoch, compute, wake);
      connected = true;
      if (connected_before) ++w.counters.reconnects;
      connected_before = true;
      backoff.reset();
      nodes.new_round();
      w.set_node(node.node());
      emit(w.log, "info",
           "connected to " + node.node() + ": consuming " + w.options.queue + " on " + node.redacted() +
               " as " + w.options.connection.client_name + "@" + node.node());
      session.run(stop);
      emit(w.log, "info", "stopped consuming " + w.options.queue);
      return;
    } catch (const BrokerError& error) {
      w.set_node({});
      if (connected) {
        // Lost: the next node first; this one comes last in the new round.
        nodes.lost();
        const auto delay = backoff.next();
        emit(w.log, "warn",
             "lost " + node.node() + ": " + error.what() + "; " +
                 (several ? "trying " + nodes.current().node() + ", " : std::string()) + "reconnecting in " +
                 std::to_string(delay.count()) + " ms");
        sleep_unless_stopped(delay, stop);
      } else if (!nodes.failed()) {
        emit(w.log, "warn", std::string(error.what()) + "; trying " + nodes.current().node());
      } else {
        nodes.new_round();
        const auto delay = backoff.next();
        emit(w.log, "warn",
             std::string(error.what()) +
                 (several ? "; no broker of " + w.brokers.node_names() + " answered" : std::string()) +
                 "; reconnecting in " + std::to_string(delay.count()) + " ms" +
                 (several ? " to " + nodes.current().node() : std::string()));
        sleep_unless_stopped(delay, stop);
      }
    }
  }
}

QueueWorker::Stats QueueWorker::stats() const {
  std::lock_guard lock(impl_->counters.node_mutex);
  return {impl_->counters.handled.load(), impl_->counters.published.load(), impl_->counters.reconnects.load(),
          impl_->counters.dropped_cancelled.load(), impl_->counters.node};
}

}  // namespace imgpipe
