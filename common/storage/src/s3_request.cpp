#include "imgpipe/storage/s3_request.hpp"

#include <algorithm>
#include <stdexcept>

#include "imgpipe/ops/url.hpp"

namespace imgpipe {

std::string s3_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_' ||
                            byte == '~';
    if (unreserved || (keep_slash && byte == '/')) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0F];
    }
  }
  return out;
}

std::string s3_url(const S3Config& config, std::string_view bucket, std::string_view key,
                   std::string_view query) {
  std::string scheme = "https";
  std::string authority = "s3." + config.region + ".amazonaws.com";
  if (!config.endpoint.empty()) {
    const UrlParts parts = split_url(config.endpoint);
    if (parts.scheme != "http" && parts.scheme != "https") {
      throw std::invalid_argument("the S3 endpoint must be an http:// or https:// URL");
    }
    if (parts.user) throw std::invalid_argument("the S3 endpoint must not hold credentials");
    scheme = parts.scheme;
    authority = parts.host.find(':') != std::string::npos ? "[" + parts.host + "]" : parts.host;
    if (parts.port) authority += ":" + std::to_string(parse_port(*parts.port));
  }
  std::string url = scheme + "://";
  std::string path = "/";
  if (config.uses_path_style()) {
    url += authority;
    path += s3_encode(bucket, false);
    if (!key.empty()) path += "/";
  } else {
    url += s3_encode(bucket, false) + "." + authority;
  }
  path += s3_encode(key, true);
  url += path;
  if (!query.empty()) url += "?" + std::string(query);
  return url;
}

std::string s3_query(std::vector<std::pair<std::string, std::string>> parameters) {
  for (auto& [name, value] : parameters) {
    name = s3_encode(name, false);
    value = s3_encode(value, false);
  }
  std::sort(parameters.begin(), parameters.end());
  std::string out;
  for (const auto& [name, value] : parameters) out += (out.empty() ? "" : "&") + name + "=" + value;
  return out;
}

}  // namespace imgpipe
