// Parsing and printing of amqp[s]:// URLs (the RabbitMQ URI spec, minus the query options we refuse).
#include "imgpipe/broker.hpp"
#include "percent_encoding.hpp"

#include <charconv>
#include <stdexcept>
#include <string>
#include <string_view>

namespace imgpipe {

namespace queues {
std::string results_for(std::string_view job_id) {
  return "imgpipe.results." + std::string(job_id);
}
}  // namespace queues

namespace {

// Debian's bundle of trusted roots: amqps without cacertfile still verifies the broker's certificate.
constexpr const char* system_ca_bundle = "/etc/ssl/certs/ca-certificates.crt";

[[noreturn]] void reject(const std::string& url, const std::string& reason) {
  // The URL may carry a password: quote only its scheme and shape, never the whole string.
  const auto scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? std::string("?") : url.substr(0, scheme_end);
  throw std::invalid_argument("invalid broker URL (" + scheme + "://...): " + reason);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(const std::string& url, std::string_view text, std::string_view what) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) {
      reject(url, "truncated percent-escape in " + std::string(what));
    }
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) reject(url, "bad percent-escape in " + std::string(what));
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

int parse_port(const std::string& url, std::string_view text) {
  int port = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535) {
    reject(url, "port must be a number from 1 to 65535, got '" + std::string(text) + "'");
  }
  return port;
}

void parse_query(const std::string& url, std::string_view query, BrokerAddress& address) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const std::string key = percent_decode(url, pair.substr(0, eq), "query");
    if (key != "cacertfile") {
      reject(url, "unsupported query parameter '" + key + "' (only cacertfile is accepted)");
    }
    if (!address.tls) reject(url, "cacertfile only applies to amqps://");
    if (eq == std::string_view::npos || eq + 1 == pair.size()) reject(url, "cacertfile needs a path");
    address.ca_file = percent_decode(url, pair.substr(eq + 1), "cacertfile");
  }
}

}  // namespace

BrokerAddress BrokerAddress::parse(const std::string& url) {
  BrokerAddress address;
  std::string_view rest(url);
  if (rest.starts_with("amqp://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("amqps://")) {
    rest.remove_prefix(8);
    address.tls = true;
    address.port = 5671;
  } else {
    reject(url, "the scheme must be amqp:// or amqps://");
  }
  if (rest.find('#') != std::string_view::npos) reject(url, "fragments (#) are not allowed");

  const auto query_start = rest.find('?');
  const std::string_view query = query_start == std::string_view::npos ? "" : rest.substr(query_start + 1);
  rest = rest.substr(0, query_start);

  const auto path_start = rest.find('/');
  std::string_view authority = rest.substr(0, path_start);
  const std::string_view path = path_start == std::string_view::npos ? "" : rest.substr(path_start + 1);

  // The last '@' separates credentials: a password may contain a raw '@' that should have been escaped.
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    const auto colon = userinfo.find(':');
    address.user = percent_decode(url, userinfo.substr(0, colon), "user");
    address.password =
        colon == std::string_view::npos ? "" : percent_decode(url, userinfo.substr(colon + 1), "password");
    if (address.user.empty()) reject(url, "empty user name before '@'");
  }

  std::string_view port_text;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) reject(url, "unterminated IPv6 address '['");
    address.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') reject(url, "unexpected text after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) reject(url, "empty port after ':'");
    }
  } else {
    const auto colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (!host.empty()) address.host = percent_decode(url, host, "host");
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) reject(url, "empty port after ':'");
    }
  }
  if (address.host.empty()) reject(url, "empty host");
  if (!port_text.empty()) address.port = parse_port(url, port_text);

  // The vhost is one path segment: a literal '/' inside it must be written %2f.
  if (path.find('/') != std::string_view::npos) {
    reject(url, "the vhost must be a single path segment (write '/' inside it as %2f)");
  }
  address.vhost = path.empty() ? "/" : percent_decode(url, path, "vhost");

  parse_query(url, query, address);
  if (address.tls && address.ca_file.empty()) address.ca_file = system_ca_bundle;
  return address;
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
