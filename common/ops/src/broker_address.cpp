// Parsing and printing of amqp[s]:// URLs (the RabbitMQ URI spec, minus the query options we refuse).
#include "imgpipe/ops/broker_address.hpp"

#include "imgpipe/ops/url.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

namespace imgpipe {

namespace {

// Debian's bundle of trusted roots: amqps without cacertfile still verifies the broker's certificate.
constexpr const char* system_ca_bundle = "/etc/ssl/certs/ca-certificates.crt";

[[noreturn]] void reject(const std::string& url, const std::string& reason) {
  // The URL may carry a password: quote only its scheme and shape, never the whole string.
  const auto scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? std::string("?") : url.substr(0, scheme_end);
  throw std::invalid_argument("invalid broker URL (" + scheme + "://...): " + reason);
}

void parse_query(const std::string& url, std::string_view query, BrokerAddress& address) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const std::string key = percent_decode(pair.substr(0, eq), "query");
    if (key != "cacertfile") {
      reject(url, "unsupported query parameter '" + key + "' (only cacertfile is accepted)");
    }
    if (!address.tls) reject(url, "cacertfile only applies to amqps://");
    if (eq == std::string_view::npos || eq + 1 == pair.size()) reject(url, "cacertfile needs a path");
    address.ca_file = percent_decode(pair.substr(eq + 1), "cacertfile");
  }
}

BrokerAddress parse_parts(const std::string& url) {
  BrokerAddress address;
  const UrlParts parts = split_url(url);
  if (parts.scheme == "amqps") {
    address.tls = true;
    address.port = 5671;
  } else if (parts.scheme != "amqp") {
    reject(url, "the scheme must be amqp:// or amqps://");
  }
  if (parts.fragment) reject(url, "fragments (#) are not allowed");
  if (parts.user) {
    if (parts.user->empty()) reject(url, "empty user name before '@'");
    address.user = *parts.user;
    address.password = parts.password.value_or("");
  }
  if (!parts.host.empty()) address.host = parts.host;
  if (parts.port) address.port = parse_port(*parts.port);

  // The vhost is one path segment: a literal '/' inside it must be written %2f.
  const std::string_view path = std::string_view(parts.path).substr(parts.path.empty() ? 0 : 1);
  if (path.find('/') != std::string_view::npos) {
    reject(url, "the vhost must be a single path segment (write '/' inside it as %2f)");
  }
  address.vhost = path.empty() ? "/" : percent_decode(path, "vhost");

  parse_query(url, parts.query.value_or(""), address);
  if (address.tls && address.ca_file.empty()) address.ca_file = system_ca_bundle;
  return address;
}

}  // namespace

BrokerAddress BrokerAddress::parse(const std::string& url) {
  try {
    return parse_parts(url);
  } catch (const UrlError& error) {
    reject(url, error.what());
  }
}

std::string BrokerAddress::redacted() const {
  std::string out = tls ? "amqps://" : "amqp://";
  out += percent_encode(user);
  if (!password.empty()) out += ":***";
  out += '@';
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out += ':' + std::to_string(port) + '/';
  if (vhost != "/") out += percent_encode(vhost);
  return out;
}

}  // namespace imgpipe
