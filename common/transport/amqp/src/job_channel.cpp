// JobChannel: a single-threaded publisher connection that outlives broker restarts. Every operation runs
// through with_reconnect(), which replaces a lost connection and replays what the broker has not confirmed.
#include "imgpipe/transport/amqp/job_channel.hpp"

#include "amqp_connection.hpp"
#include "backoff.hpp"
#include "confirm_tracker.hpp"
#include "imgpipe/messages/cancellation.hpp"
#include "node_cycle.hpp"
#include "topology.hpp"

#include <deque>
#include <map>
#include <thread>
#include <utility>

namespace imgpipe {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::uint16_t result_prefetch = 64;
constexpr std::uint16_t cancellation_prefetch = 256;
constexpr std::chrono::milliseconds max_backoff = 5s;
// Delivery tags we hand out carry the connection epoch above this bit, so a tag from before a reconnect
// is recognised and ignored instead of acking an unrelated delivery with the same broker tag.
constexpr int epoch_shift = 40;
constexpr std::uint64_t broker_tag_mask = (std::uint64_t{1} << epoch_shift) - 1;

std::chrono::milliseconds until(Clock::time_point deadline) {
  return std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

}  // namespace

struct JobChannel::Impl {
  struct Pending {
    OutgoingMessage message;
    int attempts = 1;
  };

  BrokerList brokers;
  PublisherOptions options;
  std::string job_id;
  std::string result_queue;
  LogFn log;

  std::optional<amqp::NodeCycle> nodes;
  std::string node;  // of the live connection
  std::unique_ptr<amqp::Connection> connection;
  std::uint64_t epoch = 0;
  std::uint64_t reconnects = 0;
  bool result_queue_deleted = false;
  std::string consumer_tag;
  std::string cancellations_tag;
  bool cancelled = false;
  amqp::ConfirmTracker<Pending> unconfirmed;
  std::deque<IncomingMessage> results;         // delivered, not yet returned by next_result
  std::optional<std::string> publish_failure;  // a message the broker nacked too often
  // Under a memory or disk alarm (connection.blocked) the broker is reachable and merely withholding
  // confirms: publish()'s give_up_after deadline restarts while it lasts, however long, instead of failing
  // the job, and so does wait_confirms() when asked to (AlarmWait::wait_out).
  bool blocked = false;

  void emit(std::string_view level, const std::string& line) const {
    if (log) log(level, line);
  }

  // One attempt: connect, declare, consume results, replay unconfirmed publishes.
  void connect(const BrokerAddress& address) {
    auto fresh = std::make_unique<amqp::Connection>(address, options);
    topology::declare_pipeline(*fresh, options);
    // From the stream's start, so a cancel issued while we were away (or before we started) is seen too.
    // First: should the broker refuse the stream, the channel it closes holds no other consumer yet.
    cancellations_tag = topology::follow_cancellations(*fresh, cancellation_prefetch, log);
    if (!result_queue_deleted) {
      topology::declare_result_queue(*fresh, result_queue, options.result_queue_ttl);
      topology::bind_job_dead_letters(*fresh, result_queue, job_id);
      fresh->set_prefetch(result_prefetch);
      consumer_tag = fresh->consume(result_queue);
    }
    fresh->enable_confirms();
    unconfirmed.replay(*fresh);
    if (!unconfirmed.empty()) {
      emit("info",
           "republished " + std::to_string(unconfirmed.size()) + " unconfirmed messages for job " + job_id);
    }
    connection = std::move(fresh);
    node = address.node();
    ++epoch;
  }

  void ensure_connected() {
    if (connection) return;
    if (!nodes) nodes.emplace(brokers, options.first_node);
    const bool several = nodes->size() > 1;
    const auto patience = epoch == 0 ? std::min(options.give_up_first_connect_after, options.give_up_after)
                                     : options.give_up_after;
    const auto give_up_at = Clock::now() + patience;
    Backoff backoff(250ms, max_backoff);
    nodes->new_round();
    while (true) {
      const BrokerAddress& address = nodes->current();
      std::string failure;
      try {
        connect(address);
        nodes->new_round();
        if (epoch > 1) {
          ++reconnects;
          emit("info", "job " + job_id + " reconnected to " + address.node() + " (" + address.redacted() + ")");
        } else {
          emit("info", "job " + job_id + " connected to " + address.node());
        }
        return;
      } catch (const BrokerUnreachable& error) {
        failure = error.what();
      }
      if (!nodes->failed()) {
        emit("warn", failure + "; trying " + nodes->current().node());
        continue;
      }
      nodes->new_round();
      const auto delay = backoff.next();
      if (Clock::now() + delay > give_up_at) {
        throw BrokerUnreachable((several ? "brokers " + brokers.node_names() : "broker " + address.redacted()) +
                                " unreachable for " + std::to_string(patience.count()) +
                                " s, giving up: " + failure);
      }
      emit("warn", failure + (several ? "; no broker of " + brokers.node_names() + " answered" : std::string()) +
                       "; retrying in " + std::to_string(delay.count()) + " ms");
      std::this_thread::sleep_for(delay);
    }
  }

  // The connection was lost: the results we held were never acked, and the broker redelivers them on the
  // next connection to that node. The next node of the list is tried first; this one comes last.
  void drop_connection(const std::string& why) {
    connection.reset();
    blocked = false;  // a new connection starts unblocked; the broker tells it again if the alarm persists
    results.clear();
    consumer_tag.clear();
    cancellations_tag.clear();
    const std::string lost = std::exchange(node, {});
    if (nodes) {
      nodes->lost();
      emit("warn", "lost " + lost + ": " + why + "; " +
                       (nodes->size() > 1 ? "trying " + nodes->current().node() : "reconnecting"));
    }
  }

  void take_cancel_record(const IncomingMessage& delivery) {
    connection->ack(delivery.delivery_tag);  // a stream consumer's acks only grant credit for more
    const auto record = decode_cancel(delivery.body);
    if (!record || record->job_id != job_id || cancelled) return;
    cancelled = true;
    emit("warn", "job " + job_id + " was cancelled" + (record->by.empty() ? "" : " by " + record->by));
  }

  // Runs `operation` on a live connection, replacing the connection and retrying when it is lost.
  // BrokerRefused is not retried: the broker would refuse again.
  template <typename Operation>
  auto with_reconnect(Operation&& operation) {
    while (true) {
      ensure_connected();
      try {
        return operation();
      } catch (const BrokerUnreachable& error) {
        drop_connection(error.what());
      }
    }
  }

  // Handles at most one event; false when none came within `timeout`.
  bool pump(std::chrono::milliseconds timeout) {
    auto event = connection->next_event(timeout);
    if (!event) return false;
    if (auto* delivery = std::get_if<IncomingMessage>(&*event)) {
      if (!cancellations_tag.empty() && delivery->consumer_tag == cancellations_tag) {
        take_cancel_record(*delivery);
        return true;
      }
      delivery->delivery_tag |= epoch << epoch_shift;
      results.push_back(std::move(*delivery));
    } else if (const auto* confirm = std::get_if<amqp::Confirm>(&*event)) {
      settle(*confirm);
    } else if (const auto* returned = std::get_if<amqp::Returned>(&*event)) {
      emit("warn", "broker returned a message for " + returned->routing_key + ": " +
                       std::to_string(returned->reply_code) + " " + returned->reply_text);
    } else if (const auto* alarm = std::get_if<amqp::Blocked>(&*event)) {
      blocked = true;
      emit("warn", "the broker blocked publishing for job " + job_id + " (" + alarm->reason +
                       "); waiting for it to clear");
    } else if (std::holds_alternative<amqp::Unblocked>(*event)) {
      blocked = false;
      emit("info", "the broker unblocked publishing for job " + job_id);
    } else {
      throw BrokerUnreachable("the broker cancelled the consumer of " + result_queue);
    }
    return true;
  }

  void settle(const amqp::Confirm& confirm) {
    std::vector<Pending> settled = unconfirmed.settle(confirm);
    if (confirm.ack) return;
    for (auto& pending : settled) {
      if (!unconfirmed.retry_nacked(*connection, pending, log)) {
        publish_failure = "the broker nacked a publish to " + pending.message.routing_key + " " +
                          std::to_string(pending.attempts) + " times";
      }
    }
  }

  void throw_publish_failure() {
    if (auto failure = std::exchange(publish_failure, std::nullopt))
      throw BrokerError("job " + job_id + ": " + *failure);
  }
};

JobChannel::JobChannel(BrokerList brokers, PublisherOptions options, std::string job_id, LogFn log)
    : impl_(std::make_unique<Impl>()) {
  impl_->brokers = std::move(brokers);
  impl_->options = options;
  impl_->result_queue = queues::results_for(job_id);
  impl_->job_id = std::move(job_id);
  impl_->log = std::move(log);
  impl_->ensure_connected();
}

JobChannel::~JobChannel() = default;

const std::string& JobChannel::result_queue() const {
  return impl_->result_queue;
}

void JobChannel::publish(OutgoingMessage message, int confirm_window) {
  Impl& j = *impl_;
  const auto window = static_cast<std::size_t>(std::max(confirm_window, 1));
  j.with_reconnect([&] {
    // Settle whatever confirms already arrived, so the window rarely fills.
    while (j.pump(0ms)) {
    }
    auto give_up_at = Clock::now() + j.options.give_up_after;
    while (j.unconfirmed.size() >= window) {
      if (j.blocked) give_up_at = Clock::now() + j.options.give_up_after;
      if (Clock::now() >= give_up_at) {
        throw BrokerError("job " + j.job_id + ": no publisher confirms from " + j.node +
                          " for " + std::to_string(j.options.give_up_after.count()) + " s");
      }
      j.pump(until(give_up_at));
    }
    j.unconfirmed.publish(*j.connection, Impl::Pending{std::move(message), 1});
  });
  j.throw_publish_failure();
}

void JobChannel::wait_confirms(std::chrono::milliseconds timeout, AlarmWait alarms) {
  Impl& j = *impl_;
  auto deadline = Clock::now() + timeout;
  j.with_reconnect([&] {
    while (!j.unconfirmed.empty()) {
      if (j.blocked && alarms == AlarmWait::wait_out) deadline = Clock::now() + timeout;
      if (Clock::now() >= deadline) {
        throw BrokerError("job " + j.job_id + ": " + std::to_string(j.unconfirmed.size()) +
                          " publishes still unconfirmed after " + std::to_string(timeout.count()) + " ms");
      }
      j.pump(until(deadline));
    }
  });
  j.throw_publish_failure();
}

std::optional<IncomingMessage> JobChannel::next_result(std::chrono::milliseconds timeout) {
  Impl& j = *impl_;
  if (j.result_queue_deleted) throw BrokerError("job " + j.job_id + ": the result queue was deleted");
  const auto deadline = Clock::now() + timeout;
  return j.with_reconnect([&]() -> std::optional<IncomingMessage> {
    // Reads at least once, so a zero timeout still takes what the socket already holds.
    while (j.results.empty()) {
      if (!j.pump(until(deadline)) && Clock::now() >= deadline) return std::nullopt;
    }
    IncomingMessage next = std::move(j.results.front());
    j.results.pop_front();
    return next;
  });
}

void JobChannel::ack(std::uint64_t delivery_tag) {
  Impl& j = *impl_;
  if (!j.connection || (delivery_tag >> epoch_shift) != j.epoch) return;
  try {
    j.connection->ack(delivery_tag & broker_tag_mask);
  } catch (const BrokerUnreachable& error) {
    // The result stays unacked and comes back after the reconnect; consumers de-duplicate.
    j.drop_connection(std::string(error.what()) + " (the result will be redelivered)");
  }
}

void JobChannel::delete_result_queue() {
  Impl& j = *impl_;
  j.with_reconnect([&] {
    if (!j.consumer_tag.empty()) j.connection->cancel(j.consumer_tag);
    j.consumer_tag.clear();
    j.connection->delete_queue(j.result_queue);
    j.result_queue_deleted = true;
    j.results.clear();
  });
}

bool JobChannel::cancelled() const {
  return impl_->cancelled;
}

bool JobChannel::blocked() const {
  return impl_->blocked;
}

std::uint64_t JobChannel::reconnects() const {
  return impl_->reconnects;
}

std::string JobChannel::node() const {
  return impl_->node;
}

}  // namespace imgpipe
