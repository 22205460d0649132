// Parsing and printing of amqp[s]:// URLs (the RabbitMQ URI spec, minus the query options we refuse).
#include "imgpipe/ops/broker_address.hpp"

#include "imgpipe/ops/url.hpp"

#include <algorithm>
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
  if (parts.host.find(',') != std::string::npos) {
    reject(url, "a host list (host1,host2) where one broker is expected");
  }
  if (!parts.host.empty()) address.host = parts.host;
  if (parts.port) address.port = parse_port(*parts.port);

  // The vhost is one path segment: a literal '/' inside it must be written %2f.
  const std::string_view path = std::string_view(parts.path).substr(parts.path.empty() ? 0 : 1);
  if (path.find('/') != std::string_view::npos) {
    reject(url, "the vhost must be a single path segment (write '/' inside it as %2f)");
  }
  if (path.find(',') != std::string_view::npos) {
    // Most likely a broker list written after the vhost ("amqp://h1/v,h2"): say how lists are written.
    reject(url,
           "a ',' in the vhost: list brokers before the vhost (amqp://user@host1,host2/vhost) or as full "
           "URLs (amqp://host1/vhost,amqp://host2/vhost); a vhost with a comma in its name is written %2C");
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

std::string BrokerAddress::node() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ':' + std::to_string(port);
}

BrokerList BrokerList::parse(const std::string& text) {
  BrokerList list;
  for (const std::string_view entry : split_url_list(text)) {
    const std::string url(entry);
    if (url.empty()) reject(text, "an empty entry in the broker list (two commas, or one at an end)");
    // The host list sits between the userinfo's '@' (or "://") and the path, query or fragment.
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) {
      list.nodes.push_back(BrokerAddress::parse(url));  // rejected there, with the reason
      continue;
    }
    const auto userinfo = find_userinfo(url);
    const std::size_t hosts_begin = userinfo ? userinfo->end + 1 : scheme_end + 3;
    const std::size_t hosts_end = std::min(url.find_first_of("/?#", hosts_begin), url.size());
    const std::string_view hosts = std::string_view(url).substr(hosts_begin, hosts_end - hosts_begin);
    if (hosts.find(',') == std::string_view::npos) {
      list.nodes.push_back(BrokerAddress::parse(url));
      continue;
    }
    const std::string prefix = url.substr(0, hosts_begin);
    const std::string suffix = url.substr(hosts_end);
    std::size_t begin = 0;
    while (true) {
      const auto comma = hosts.find(',', begin);
      const std::string_view host = hosts.substr(begin, comma == std::string_view::npos ? comma : comma - begin);
      if (host.empty()) reject(url, "an empty host in the host list (two commas, or one at an end)");
      list.nodes.push_back(BrokerAddress::parse(prefix + std::string(host) + suffix));
      if (comma == std::string_view::npos) break;
      begin = comma + 1;
    }
  }
  return list;
}

std::string BrokerList::redacted() const {
  std::string out;
  for (const auto& node : nodes) out += (out.empty() ? "" : ",") + node.redacted();
  return out;
}

std::string BrokerList::node_names() const {
  std::string out;
  for (const auto& node : nodes) out += (out.empty() ? "" : ", ") + node.node();
  return out;
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
