// RFC 3986 percent-encoding of everything but the unreserved characters, for the parts of AMQP and HTTP
// URLs (user, password, vhost, queue names) that may hold any byte.
#pragma once

#include <string>
#include <string_view>

namespace imgpipe {

inline bool is_unreserved_url_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

inline std::string percent_encode(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    if (is_unreserved_url_char(c)) {
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

}  // namespace imgpipe
