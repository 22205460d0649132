// One plain connection for administrative work; failures surface to the caller, nothing is retried.
#include "imgpipe/transport/amqp/broker_session.hpp"

#include "amqp_connection.hpp"
#include "node_cycle.hpp"
#include "topology.hpp"

#include <algorithm>

namespace imgpipe {

struct BrokerSession::Impl {
  BrokerOptions options;
  std::string node;  // before `owned`, which sets it
  std::unique_ptr<amqp::Connection> owned;
  amqp::Connection& connection;
  bool confirms = false;
  Impl(const BrokerList& brokers, const BrokerOptions& opts)
      : options(opts), owned(amqp::connect_to_any(brokers, opts, &node)), connection(*owned) {}
};

BrokerSession::BrokerSession(const BrokerList& brokers, const BrokerOptions& options)
    : impl_(std::make_unique<Impl>(brokers, options)) {}

BrokerSession::~BrokerSession() = default;

void BrokerSession::declare_topology() {
  topology::declare_pipeline(impl_->connection, impl_->options);
}

void BrokerSession::declare_cancellations() {
  topology::declare_cancellations(impl_->connection);
}

void BrokerSession::declare_stage_queue(const std::string& name) {
  // Only the dead-letter plumbing: a private queue must not impose its options on the pipeline's queues.
  topology::declare_dead_letters(impl_->connection);
  topology::declare_stage_queue(impl_->connection, name, impl_->options);
}

std::uint32_t BrokerSession::message_count(const std::string& queue) {
  return impl_->connection.message_count(queue);
}

std::uint32_t BrokerSession::consumer_count(const std::string& queue) {
  return impl_->connection.consumer_count(queue);
}

std::optional<IncomingMessage> BrokerSession::get(const std::string& queue) {
  return impl_->connection.get(queue);
}

void BrokerSession::purge(const std::string& queue) {
  impl_->connection.purge_queue(queue);
}

void BrokerSession::publish(const OutgoingMessage& message, std::chrono::seconds timeout) {
  Impl& s = *impl_;
  if (!s.confirms) {
    s.connection.enable_confirms();
    s.confirms = true;
  }
  const std::uint64_t sequence = s.connection.publish(message);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto event = s.connection.next_event(std::max(left, std::chrono::milliseconds(0)));
    if (!event) continue;
    const auto* confirm = std::get_if<amqp::Confirm>(&*event);
    if (confirm == nullptr) continue;  // a session consumes nothing; nothing else concerns us
    if (confirm->sequence == sequence || (confirm->multiple && confirm->sequence > sequence)) {
      if (!confirm->ack) throw BrokerError("the broker refused (nacked) a publish to " + message.routing_key);
      return;
    }
  }
  throw BrokerError("no confirm from the broker within " + std::to_string(timeout.count()) +
                    " s for a publish to " + message.routing_key);
}

void BrokerSession::delete_queue(const std::string& queue) {
  impl_->connection.delete_queue(queue);
}

std::string BrokerSession::node() const {
  return impl_->node;
}

void declare_topology(const BrokerList& brokers, const BrokerOptions& options) {
  BrokerSession(brokers, options).declare_topology();
}

}  // namespace imgpipe
