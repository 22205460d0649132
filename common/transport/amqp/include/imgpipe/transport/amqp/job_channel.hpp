// The publisher's connection for one job: its batches out, its results in.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "imgpipe/transport/amqp/broker.hpp"

namespace imgpipe {

// Publish batches with a bounded confirm window, and consume the job's result queue. Survives a broker
// restart: reconnects, re-declares, republishes what was unconfirmed (consumers de-duplicate), and gives up
// with BrokerUnreachable after options.give_up_after. Given several brokers (a cluster's nodes) it starts at
// options.first_node or a random one, and after losing a connection moves to the next node, where it
// re-declares the topology and its result queue, consumes it, and republishes; it backs off only when no
// node of the list answered.
// Not thread-safe: one thread owns a JobChannel. The connection is serviced only inside its calls, so an
// idle gap longer than twice the heartbeat costs a transparent reconnect on the next call.
class JobChannel {
 public:
  JobChannel(BrokerList brokers, PublisherOptions options, std::string job_id, LogFn log);
  ~JobChannel();
  JobChannel(const JobChannel&) = delete;
  JobChannel& operator=(const JobChannel&) = delete;

  const std::string& result_queue() const;
  // Blocks while `confirm_window` publishes are unconfirmed.
  void publish(OutgoingMessage message, int confirm_window = 64);
  // Under a broker memory or disk alarm (connection.blocked) the broker is reachable but reads no publishes:
  // missing confirms then mean "wait", not "give up". publish() always waits alarms out; wait_confirms()
  // does when asked, its timeout then counting only time the broker was not blocking us.
  enum class AlarmWait { time_out, wait_out };
  // Throws BrokerError on timeout or nack.
  void wait_confirms(std::chrono::milliseconds timeout, AlarmWait alarms = AlarmWait::time_out);
  bool blocked() const;  // the broker reported an alarm and has not lifted it yet
  // Next result delivery, or nullopt after `timeout` (zero: only what has already arrived). Results are
  // acked with ack().
  std::optional<IncomingMessage> next_result(std::chrono::milliseconds timeout);
  // A tag from before a reconnect is ignored: the broker redelivers that result anyway.
  void ack(std::uint64_t delivery_tag);
  void delete_result_queue();
  // `imgpipe cancel` cancelled this job: the channel reads the stream of cancel records (from its start,
  // on every connect) and notices it inside its calls (publish, wait_confirms, next_result). Once true the
  // job will get no more results: `imgpipe cancel` deleted its result queue.
  bool cancelled() const;
  std::uint64_t reconnects() const;
  // host:port of the node the channel is connected to; empty while it has no connection.
  std::string node() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imgpipe
