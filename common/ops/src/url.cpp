#include "imgpipe/ops/url.hpp"

#include <cctype>
#include <charconv>

namespace imgpipe {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

}  // namespace

std::string percent_decode(std::string_view text, std::string_view what) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    if (high < 0 || low < 0) throw UrlError("bad percent-escape in the " + std::string(what));
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

std::string percent_encode(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    if (is_unreserved(c)) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(digits[byte >> 4]);
      out.push_back(digits[byte & 0x0f]);
    }
  }
  return out;
}

int parse_port(std::string_view text) {
  int port = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535) {
    throw UrlError("port must be a number from 1 to 65535, got '" + std::string(text) + "'");
  }
  return port;
}

std::optional<UserinfoSpan> find_userinfo(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  const std::size_t begin = scheme_end + 3;
  const auto authority_end = url.find_first_of("/?#", begin);
  const std::string_view authority = url.substr(
      begin, authority_end == std::string_view::npos ? std::string_view::npos : authority_end - begin);
  const auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  return UserinfoSpan{begin, begin + at};
}

std::vector<std::string_view> split_url_list(std::string_view text) {
  // A scheme is a letter, then letters, digits, '+', '-' or '.' (RFC 3986 section 3.1).
  const auto scheme_follows = [&](std::size_t at) {
    std::size_t i = at;
    if (i >= text.size() || !std::isalpha(static_cast<unsigned char>(text[i]))) return false;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '+' ||
                               text[i] == '-' || text[i] == '.')) {
      ++i;
    }
    return text.substr(i).starts_with("://");
  };
  std::vector<std::string_view> urls;
  std::size_t begin = 0;
  for (std::size_t comma = text.find(','); comma != std::string_view::npos; comma = text.find(',', comma + 1)) {
    if (!scheme_follows(comma + 1)) continue;
    urls.push_back(text.substr(begin, comma - begin));
    begin = comma + 1;
  }
  urls.push_back(text.substr(begin));
  return urls;
}

UrlParts split_url(std::string_view url) {
  UrlParts parts;
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) throw UrlError("no scheme (scheme://...)");
  parts.scheme = std::string(url.substr(0, scheme_end));
  std::string_view rest = url.substr(scheme_end + 3);

  if (const auto hash = rest.find('#'); hash != std::string_view::npos) {
    parts.fragment = std::string(rest.substr(hash + 1));
    rest = rest.substr(0, hash);
  }
  if (const auto question = rest.find('?'); question != std::string_view::npos) {
    parts.query = std::string(rest.substr(question + 1));
    rest = rest.substr(0, question);
  }
  const auto path_start = rest.find('/');
  std::string_view authority = rest.substr(0, path_start);
  if (path_start != std::string_view::npos) parts.path = std::string(rest.substr(path_start));

  if (const auto userinfo = find_userinfo(url); userinfo) {
    const std::string_view text = url.substr(userinfo->begin, userinfo->end - userinfo->begin);
    authority.remove_prefix(text.size() + 1);
    const auto colon = text.find(':');
    parts.user = percent_decode(text.substr(0, colon), "user");
    if (colon != std::string_view::npos) parts.password = percent_decode(text.substr(colon + 1), "password");
  }

  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw UrlError("unterminated IPv6 address '['");
    parts.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw UrlError("unexpected text after the IPv6 address");
      parts.port = std::string(after.substr(1));
    }
  } else {
    const auto colon = authority.find(':');
    parts.host = percent_decode(authority.substr(0, colon), "host");
    if (colon != std::string_view::npos) parts.port = std::string(authority.substr(colon + 1));
  }
  return parts;
}

}  // namespace imgpipe
