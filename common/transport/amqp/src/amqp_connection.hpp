// Internal RAII layer over one rabbitmq-c connection with one channel. Only transport sources include this;
// <amqp.h> stays in amqp_connection.cpp. rabbitmq-c allows one thread per connection: so does this class.
#pragma once

#include "imgpipe/transport/amqp/broker.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace imgpipe::amqp {

// Queue x-arguments: AMQP long strings or signed 64-bit integers are all the topology needs.
using ArgumentValue = std::variant<std::string, std::int64_t>;
using Arguments = std::vector<std::pair<std::string, ArgumentValue>>;

// basic.ack / basic.nack for publishes, by publish sequence number (1, 2, ... on each connection).
struct Confirm {
  std::uint64_t sequence = 0;
  bool multiple = false;  // covers every unconfirmed sequence up to and including `sequence`
  bool ack = true;
};

// A mandatory publish the broker could not route; its confirm (an ack) follows.
struct Returned {
  std::string routing_key;
  int reply_code = 0;
  std::string reply_text;
};

// The broker cancelled our consumer (its queue was deleted, say).
struct Cancelled {
  std::string consumer_tag;
};

// connection.blocked / connection.unblocked: the broker stopped (or resumed) reading our publishes because of
// a resource alarm (memory or disk). We advertise the capability at login so the broker tells us.
struct Blocked {
  std::string reason;  // e.g. "low on memory", "low on disk"
};
struct Unblocked {};

using Event = std::variant<IncomingMessage, Confirm, Returned, Cancelled, Blocked, Unblocked>;

class Connection {
 public:
  // Opens the socket (TLS with peer and hostname verification for amqps), logs in with the heartbeat and
  // opens channel 1. Throws BrokerUnreachable or BrokerRefused.
  Connection(const BrokerAddress& address, const ConnectionOptions& options);
  // Closes channel and connection politely unless the connection already failed.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opens the channel again after the broker closed it (a refused request): consumers, QoS and confirm mode
  // of the old channel are gone. Throws BrokerError when the connection itself is gone.
  void reopen_channel();
  void enable_confirms();
  void set_prefetch(std::uint16_t count);
  void declare_exchange(const std::string& name, const std::string& type);
  // Durable, non-exclusive, not auto-deleted. Returns the ready message count.
  std::uint32_t declare_queue(const std::string& name, const Arguments& arguments);
  // Passive declare: the ready message count, or BrokerRefused (404) if the queue does not exist.
  std::uint32_t message_count(const std::string& name);
  // Passive declare: the consumer count, or BrokerRefused (404) if the queue does not exist.
  std::uint32_t consumer_count(const std::string& name);
  void bind_queue(const std::string& queue, const std::string& exchange, const std::string& routing_key,
                  const Arguments& arguments = {});
  // An exchange-to-exchange binding: what `source` routes with `routing_key` also goes through `destination`.
  void bind_exchange(const std::string& destination, const std::string& source,
                     const std::string& routing_key);
  void purge_queue(const std::string& name);
  void delete_queue(const std::string& name);

  // Manual acks; returns the consumer tag. `arguments`: e.g. x-stream-offset for a stream.
  std::string consume(const std::string& queue, const Arguments& arguments = {});
  void cancel(const std::string& consumer_tag);
  std::optional<IncomingMessage> get(const std::string& queue);  // basic.get, acked by the broker at once

  // Persistent, content type application/x-imgpipe, on message.exchange (empty: the default). Returns the
  // publish sequence number that the broker's confirm will carry (meaningful once confirms are enabled).
  std::uint64_t publish(const OutgoingMessage& message);
  void ack(std::uint64_t delivery_tag);
  void reject(std::uint64_t delivery_tag, bool requeue);

  // Waits up to `timeout` (zero: only what is already readable) for the next delivery, confirm, return or
  // cancel; services heartbeats meanwhile. nullopt when nothing came. A connection.close or channel.close
  // from the broker is answered and thrown as BrokerError.
  std::optional<Event> next_event(std::chrono::milliseconds timeout);

  // For poll(): readable means next_event() has something to read. With TLS, OpenSSL may hold decrypted
  // bytes the socket no longer shows, so callers poll with a bounded timeout.
  int socket_fd() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace imgpipe::amqp
