// Which broker of a list to try next. A client starts at one node (a random one unless told, so replicas
// spread over a cluster's nodes) and goes round the list: after a failed connect it tries the next node at
// once, and only when a whole round failed does it back off; after losing a connection it starts a new
// round at the next node, so a node that went away is tried last.
#pragma once

#include "amqp_connection.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace imgpipe::amqp {

class NodeCycle {
 public:
  NodeCycle(const BrokerList& brokers, std::optional<std::size_t> first)
      : nodes_(brokers.nodes), current_(pick_first(first)) {
    if (nodes_.empty()) throw std::invalid_argument("an empty broker list");
  }

  const BrokerAddress& current() const { return nodes_[current_]; }
  std::size_t size() const { return nodes_.size(); }

  // A connect to current() failed: move on. True when every node of this round has now failed.
  bool failed() {
    current_ = (current_ + 1) % nodes_.size();
    return ++failed_in_round_ >= nodes_.size();
  }
  // The connection to current() was lost: a new round begins at the next node.
  void lost() {
    current_ = (current_ + 1) % nodes_.size();
    new_round();
  }
  void new_round() { failed_in_round_ = 0; }

 private:
  std::size_t pick_first(std::optional<std::size_t> first) const {
    if (nodes_.size() <= 1) return 0;
    if (first) return *first % nodes_.size();
    std::uniform_int_distribution<std::size_t> any(0, nodes_.size() - 1);
    std::random_device entropy;
    return any(entropy);
  }

  std::vector<BrokerAddress> nodes_;
  std::size_t current_ = 0;
  std::size_t failed_in_round_ = 0;
};

// One round over the list for a short-lived session: the first node that accepts, else the last
// BrokerUnreachable. A refusal (bad credentials, say) is thrown at once: every node would refuse alike.
// `node`, when given, is set to the host:port of the node connected to.
inline std::unique_ptr<Connection> connect_to_any(const BrokerList& brokers, const ConnectionOptions& options,
                                                  std::string* node = nullptr) {
  NodeCycle nodes(brokers, options.first_node);
  while (true) {
    try {
      auto connection = std::make_unique<Connection>(nodes.current(), options);
      if (node != nullptr) *node = nodes.current().node();
      return connection;
    } catch (const BrokerUnreachable&) {
      if (nodes.failed()) throw;
    }
  }
}

}  // namespace imgpipe::amqp
