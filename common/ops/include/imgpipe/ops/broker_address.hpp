// Where a RabbitMQ broker is and how to log in: the amqp[s]:// URL every worker and tool is given.
#pragma once

#include <string>

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

  static BrokerAddress parse(const std::string& url);  // throws std::invalid_argument with the reason
  std::string redacted() const;                        // the URL with the password hidden, for logs
};

}  // namespace imgpipe
