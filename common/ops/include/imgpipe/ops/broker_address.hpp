// Where a RabbitMQ broker is and how to log in: the amqp[s]:// URL every worker and tool is given, or a list
// of them (the nodes of a cluster) to fail over between.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace imgpipe {

inline constexpr const char* kDefaultBroker = "amqp://guest:guest@localhost:5672/";

// amqp[s]://user:pass@host:port/vhost[?cacertfile=PATH]; missing parts take the AMQP defaults
// (guest:guest@localhost:5672, vhost "/"; 5671 for amqps). A user without a password gets an empty one.
// User, password, host and vhost are percent-decoded ("%2f" is "/"). The only query parameter is cacertfile,
// for amqps; anything else (verify=verify_none, say) is rejected rather than silently ignored.
struct BrokerAddress {
  std::string host = "localhost";
  int port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  bool tls = false;
  std::string ca_file;  // amqps only, default the system bundle; peer and hostname verification are always on

  // One broker; a host list is refused here (BrokerList::parse reads those). Throws std::invalid_argument
  // with the reason, never quoting the URL.
  static BrokerAddress parse(const std::string& url);
  std::string redacted() const;  // the URL with the password hidden, for logs
  std::string node() const;      // "host:port" ("[::1]:5672"): which node, in logs and connection names
};

// The brokers a client may use, tried in turn: the nodes of one cluster (or replicas of one setup). Given as
//   amqp://user@host1:5672,host2:5672,host3/vhost   one URL with a host list: user, password, vhost, TLS and
//                                                   cacertfile shared; each host takes the scheme's port
//                                                   unless it names one
//   amqp://user@host1/vhost,amqps://user@host2/vhost  full URLs separated by commas, each read on its own
// or a mix of both. A single URL is a list of one. Order is kept; which node a client tries first is the
// client's choice (the transport starts at a random one, so replicas spread over the nodes).
struct BrokerList {
  std::vector<BrokerAddress> nodes;  // at least one once parsed

  BrokerList() = default;
  BrokerList(BrokerAddress single) : nodes{std::move(single)} {}  // NOLINT: one broker is a list of one

  // Throws std::invalid_argument with the reason (an empty entry, a bad URL, ...), never quoting a password.
  static BrokerList parse(const std::string& text);
  const BrokerAddress& front() const { return nodes.front(); }
  std::size_t size() const { return nodes.size(); }
  std::string redacted() const;  // each node's redacted URL, comma-separated
  std::string node_names() const;  // "host1:5672, host2:5672"
};

}  // namespace imgpipe
