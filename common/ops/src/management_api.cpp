// The RabbitMQ management HTTP API over cpp-httplib. Debian ships cpp-httplib split into a header and a
// shared library built with OpenSSL, zlib and brotli; its pkg-config flags must match that build, which is
// why only this file includes <httplib.h>.
#include "imgpipe/ops/management_api.hpp"
#include "imgpipe/ops/url.hpp"

#include <httplib.h>

#include <string_view>

#include <nlohmann/json.hpp>

namespace imgpipe {
namespace {

[[noreturn]] void reject(const std::string& reason) {
  // Never quote the URL itself: it may carry a password.
  throw std::invalid_argument("invalid management URL: " + reason);
}

// Queue and vhost names go into one path segment each: "/" (the default vhost) becomes %2F.
double rate_of(const nlohmann::json& stats, const char* key) {
  if (!stats.is_object() || !stats.contains(key)) return 0;
  const auto& details = stats.at(key);
  if (!details.is_object()) return 0;
  // The average over the window asked for (rate_window): "rate" alone compares the last two samples, and
  // channels report acks only every few statistics intervals, so it flickers between 0 and twice the truth.
  for (const char* field : {"avg_rate", "rate"}) {
    if (details.contains(field) && details.at(field).is_number()) return details.at(field).get<double>();
  }
  return 0;
}

// Rates averaged over the last 30 s, from samples 5 s apart.
constexpr const char* rate_window = "?msg_rates_age=30&msg_rates_incr=5";

std::uint64_t count_of(const nlohmann::json& queue, const char* key) {
  // Counts are missing for a moment after a queue is declared, before the first stats emission.
  return queue.contains(key) && queue.at(key).is_number_unsigned() ? queue.at(key).get<std::uint64_t>() : 0;
}

}  // namespace

ManagementAddress ManagementAddress::parse(const std::string& url) {
  ManagementAddress address;
  UrlParts parts;
  try {
    if (url.starts_with("https://")) {
      reject("https is not supported; point --management at the plugin's plain http listener");
    }
    if (!url.starts_with("http://")) reject("the scheme must be http://");
    parts = split_url(url);
    if (parts.query || parts.fragment) reject("queries and fragments are not allowed");
    if (parts.user) {
      if (parts.user->empty()) reject("empty user name before '@'");
      address.user = *parts.user;
      address.password = parts.password.value_or("");
    }
    if (parts.host.empty()) reject("empty host");
    address.host = parts.host;
    if (parts.port) address.port = parse_port(*parts.port);
  } catch (const UrlError& error) {
    reject(error.what());
  }
  std::string_view path = parts.path;
  while (path.ends_with('/')) path.remove_suffix(1);
  address.path_prefix = std::string(path);
  return address;
}

ManagementAddress ManagementAddress::for_broker(const BrokerAddress& broker) {
  ManagementAddress address;
  address.host = broker.host;
  address.user = broker.user;
  address.password = broker.password;
  return address;
}

std::string ManagementAddress::redacted() const {
  std::string out = "http://" + percent_encode(user);
  if (!password.empty()) out += ":***";
  out += '@';
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return out + ':' + std::to_string(port) + path_prefix + '/';
}

ManagementClient::ManagementClient(ManagementAddress address, std::chrono::seconds timeout)
    : address_(std::move(address)), timeout_(timeout) {}

namespace {

// httplib names its errors in one word ("Connection", "Read"); say what each means for an operator.
std::string describe(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "could not connect";
    case httplib::Error::ConnectionTimeout:
      return "connect timed out";
    case httplib::Error::Read:
      return "no HTTP answer (is that the AMQP port rather than the management port?)";
    case httplib::Error::Write:
      return "the connection broke while sending the request";
    default:
      return httplib::to_string(error);
  }
}

struct Reply {
  int status = 0;
  std::string body;
};

Reply get(const ManagementAddress& address, std::chrono::seconds timeout, const std::string& path) {
  httplib::Client client(address.host, address.port);
  client.set_connection_timeout(static_cast<time_t>(timeout.count()));
  client.set_read_timeout(static_cast<time_t>(timeout.count()));
  client.set_basic_auth(address.user, address.password);
  const std::string where = "the RabbitMQ management API at " + address.redacted();
  const auto result = client.Get(address.path_prefix + path);
  if (!result) {
    throw ManagementError(
        "cannot reach " + where + ": " + describe(result.error()) +
        "; is the rabbitmq_management plugin enabled there? (--management or IMGPIPE_MANAGEMENT "
        "sets the URL)");
  }
  if (result->status == 401) {
    throw ManagementError(where + " refused user '" + address.user +
                          "' (401): wrong password, or the user lacks the management or monitoring tag");
  }
  return {result->status, result->body};
}

nlohmann::json parse_json(const ManagementAddress& address, const std::string& path,
                          const std::string& body) {
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& error) {
    throw ManagementError("unreadable answer from " + address.redacted() + " for " + path + ": " +
                          error.what());
  }
}

}  // namespace

void ManagementClient::check_vhost(const std::string& vhost) const {
  const std::string path = "/api/vhosts/" + percent_encode(vhost);
  const Reply reply = get(address_, timeout_, path);
  if (reply.status == 404) {
    throw ManagementError("the RabbitMQ management API at " + address_.redacted() + " does not know vhost '" +
                          vhost + "' (404): wrong vhost, or the URL is not the management API");
  }
  if (reply.status != 200) {
    throw ManagementError("the RabbitMQ management API at " + address_.redacted() + " answered " +
                          std::to_string(reply.status) + " for " + path);
  }
  // A web server that is not the API can answer 200 with HTML: insist on the API's JSON.
  if (!parse_json(address_, path, reply.body).contains("name")) {
    throw ManagementError(address_.redacted() + " answered " + path +
                          " without a vhost: not the management API");
  }
}

std::optional<QueueStats> ManagementClient::queue(const std::string& vhost, const std::string& name) const {
  const std::string path = "/api/queues/" + percent_encode(vhost) + "/" + percent_encode(name);
  const Reply reply = get(address_, timeout_, path + rate_window);
  if (reply.status == 404) return std::nullopt;
  if (reply.status != 200) {
    throw ManagementError("the RabbitMQ management API at " + address_.redacted() + " answered " +
                          std::to_string(reply.status) + " for " + path);
  }
  const nlohmann::json queue = parse_json(address_, path, reply.body);
  QueueStats stats;
  stats.ready = count_of(queue, "messages_ready");
  stats.unacked = count_of(queue, "messages_unacknowledged");
  stats.consumers = count_of(queue, "consumers");
  const auto message_stats = queue.value("message_stats", nlohmann::json::object());
  stats.publish_rate = rate_of(message_stats, "publish_details");
  stats.deliver_rate = rate_of(message_stats, "deliver_get_details");
  stats.ack_rate = rate_of(message_stats, "ack_details");
  return stats;
}

}  // namespace imgpipe
