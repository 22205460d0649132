// Short-lived administrative access to the broker for tools and tests: declare, inspect, drain.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "imgpipe/transport/amqp/broker.hpp"

namespace imgpipe {

// Opens a connection and declares the pipeline topology.
void declare_topology(const BrokerList& brokers, const BrokerOptions& options);

// No reconnects, and heartbeats are serviced only inside its calls: idle longer than two heartbeats and the
// broker drops it. Given several brokers it connects to the first that answers, starting at
// options.first_node or a random one; BrokerUnreachable when none does.
class BrokerSession {
 public:
  BrokerSession(const BrokerList& brokers, const BrokerOptions& options);
  ~BrokerSession();
  BrokerSession(const BrokerSession&) = delete;
  BrokerSession& operator=(const BrokerSession&) = delete;

  void declare_topology();
  // Only the stream of cancel records (queues::cancelled), which needs no stage queue settings.
  void declare_cancellations();
  // A stage queue like imgpipe.images (quorum, options.delivery_limit, dead-lettered to imgpipe.dead under
  // its own name) with any name: lets tests run stages on private queues.
  void declare_stage_queue(const std::string& name);
  // Ready messages, not counting those delivered and unacked. Throws BrokerRefused if the queue is missing.
  std::uint32_t message_count(const std::string& queue);
  // Consumers of the queue. Throws BrokerRefused if the queue is missing.
  std::uint32_t consumer_count(const std::string& queue);
  // Takes one message off the queue (basic.get, acked at once), or nullopt when the queue is empty.
  std::optional<IncomingMessage> get(const std::string& queue);
  void purge(const std::string& queue);
  // Publishes persistently and waits for the broker's confirm; throws BrokerError when the broker nacks it
  // or does not confirm within `timeout`.
  void publish(const OutgoingMessage& message, std::chrono::seconds timeout = std::chrono::seconds(30));
  void delete_queue(const std::string& queue);
  std::string node() const;  // host:port of the node this session is connected to

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imgpipe
