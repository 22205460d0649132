// A read-only client for the RabbitMQ management HTTP API, enough for `imgpipe status`: queue depths,
// consumers and message rates. The HTTP library stays inside management_api.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "imgpipe/ops/broker_address.hpp"

namespace imgpipe {

// The API could not be reached, refused the credentials, or answered something we cannot read.
// The message names the URL (password hidden) and what went wrong.
class ManagementError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// http://user:pass@host:port/[prefix/]; user and password are percent-decoded. The path is the API's
// prefix (management.path_prefix, or a reverse proxy's), "/" when absent. Only http: the plugin's TLS
// listener is a separate setup that imgpipe does not use.
struct ManagementAddress {
  std::string host = "localhost";
  int port = 15672;
  std::string user = "guest";
  std::string password = "guest";
  std::string path_prefix;  // without the trailing slash: "" or "/rabbitmq"

  static ManagementAddress parse(const std::string& url);  // throws std::invalid_argument with the reason
  // The plugin's usual place for a broker: same host and credentials, port 15672, plain http.
  static ManagementAddress for_broker(const BrokerAddress& broker);
  std::string redacted() const;
};

struct QueueStats {
  std::uint64_t ready = 0;
  std::uint64_t unacked = 0;
  std::uint64_t consumers = 0;
  // Messages per second averaged over the last 30 s (the API's msg_rates_age=30, samples 5 s apart: its
  // instantaneous rate flickers, channels report acks every few sampling intervals); 0 when the queue has
  // been idle, because the API then leaves the *_details objects out.
  double publish_rate = 0;
  double deliver_rate = 0;
  double ack_rate = 0;  // deliveries its consumers finished (acked): what the stage processed
  std::uint64_t depth() const { return ready + unacked; }
};

class ManagementClient {
 public:
  explicit ManagementClient(ManagementAddress address,
                            std::chrono::seconds timeout = std::chrono::seconds(10));

  // Throws ManagementError when the vhost does not exist (a 404 here means a wrong URL or vhost, which
  // every later answer would only hide), the credentials are refused, or the API is unreachable.
  void check_vhost(const std::string& vhost) const;
  // nullopt when the queue does not exist (not declared yet, or a finished job's deleted result queue).
  std::optional<QueueStats> queue(const std::string& vhost, const std::string& name) const;

  const ManagementAddress& address() const { return address_; }

 private:
  ManagementAddress address_;
  std::chrono::seconds timeout_;
};

}  // namespace imgpipe
