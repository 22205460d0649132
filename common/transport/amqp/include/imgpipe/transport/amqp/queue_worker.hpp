// The consuming side of a stage queue: deliveries in, a handler's outputs published and confirmed, then
// acked.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "imgpipe/transport/amqp/broker.hpp"

namespace imgpipe {

struct WorkerOptions {
  // The stage queue to consume. For a queue of the stage graph the worker declares the whole pipeline
  // topology; any other name is declared alone as a stage queue (quorum, delivery limit, dead-lettering).
  std::string queue;
  int prefetch = 4;         // unacked deliveries held at once
  int confirm_window = 64;  // unconfirmed publishes before we stop taking new work
  std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
  BrokerOptions connection;
  // Called on the IO thread with the number of deliveries held (received, not yet acked or rejected)
  // whenever it changes; 0 after a connection is lost, since the broker takes them back. For metrics.
  std::function<void(std::size_t held)> on_held_changed;
  // Called on the IO thread once every output of a delivery is confirmed by the broker, just before that
  // delivery is acked, with how many deliveries got this far since the worker started (1, 2, ...). This is
  // the one moment a crash leaves outputs published and their input unacked: tests/fault hooks in here.
  std::function<void(std::uint64_t confirmed_deliveries)> before_ack;
  // Called on the IO thread for each delivery of a cancelled job (`imgpipe cancel`) that was acked and
  // dropped without reaching the handler. For metrics.
  std::function<void()> on_cancelled_dropped;
};

// What the handler wants done with one delivery: publish these, then ack the delivery once every one of
// them is confirmed by the broker. The handler dead-letters a message by returning it addressed to
// exchange queues::dead_letter_exchange under its source queue's name, with an x-imgpipe-error header:
// it lands in imgpipe.dead (and its job's result queue) as durably as any output.
// A handler that throws is a bug in the stage: the delivery is rejected with requeue, so the broker's
// delivery limit eventually dead-letters a poison message.
using DeliveryHandler = std::function<std::vector<OutgoingMessage>(const IncomingMessage&)>;

// Consumes one queue until `stop` becomes true. One IO thread owns the connection and keeps it serviced
// (heartbeats, confirms) while handlers run on a compute thread, so a batch longer than the heartbeat
// interval never drops the connection. Given several brokers (the nodes of a cluster) it connects to one,
// starting at options.connection.first_node or a random one and trying the others in turn; after a
// connection failure it moves to the next node, re-declares the topology and QoS and consumes again there,
// backing off exponentially only when no node of the list answered; the broker redelivers what was unacked.
// On stop, the batch in flight is finished, published, confirmed and acked before run() returns.
// A worker of a stage queue of the pipeline also reads the stream of cancel records (queues::cancelled)
// from its start before it consumes, and keeps reading it: a delivery whose x-imgpipe-job names a cancelled
// job is acked and dropped without reaching the handler, and the outputs of a batch that was computing when
// its job was cancelled are dropped instead of published. Cancelled jobs are remembered in a bounded set
// (messages/cancellation.hpp).
class QueueWorker {
 public:
  QueueWorker(BrokerList brokers, WorkerOptions options, DeliveryHandler handler, LogFn log);
  ~QueueWorker();
  QueueWorker(const QueueWorker&) = delete;
  QueueWorker& operator=(const QueueWorker&) = delete;

  void run(const std::atomic<bool>& stop);

  struct Stats {
    std::uint64_t handled = 0;
    std::uint64_t published = 0;
    std::uint64_t reconnects = 0;
    std::uint64_t dropped_cancelled = 0;  // deliveries of cancelled jobs dropped unhandled
    std::string node;                     // host:port of the node it is consuming on; empty between
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imgpipe
