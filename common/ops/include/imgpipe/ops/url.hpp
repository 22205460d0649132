// The one reader of the URLs imgpipe is given (amqp[s]:// brokers, the http:// management API, and the
// credential rules that look inside both), and RFC 3986 percent-coding for their parts.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace imgpipe {

// A URL that cannot be read. The text says what is wrong and never quotes the URL: it may hold a password.
class UrlError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// scheme://[user[:password]@]host[:port][/path][?query][#fragment], split but not judged: each kind of URL
// decides which parts it allows. User, password and host are percent-decoded; path and query are not,
// because their separators ('/', '&', '=') must be told apart from escaped ones first.
struct UrlParts {
  std::string scheme;                   // before "://", as written
  std::optional<std::string> user;      // present when the authority has '@'
  std::optional<std::string> password;  // present when that userinfo has ':'
  std::string host;                     // an IPv6 address without its brackets; may be empty
  std::optional<std::string> port;      // the text after ':', as written (possibly empty or not a number)
  std::string path;                     // from the '/' after the authority, or empty
  std::optional<std::string> query;     // after '?'
  std::optional<std::string> fragment;  // after '#'
};

// Throws UrlError when there is no "://", an IPv6 address is unterminated, or a percent-escape is bad.
// The last '@' of the authority ends the userinfo, so a raw '@' in a password still counts as password.
UrlParts split_url(std::string_view url);

// A port from 1 to 65535; throws UrlError saying so otherwise.
int parse_port(std::string_view text);

// Throws UrlError("bad percent-escape in the <what>") for '%' not followed by two hex digits.
std::string percent_decode(std::string_view text, std::string_view what);

// Everything but the unreserved characters escaped: for user, password, vhost and queue names.
std::string percent_encode(std::string_view text);

// Where the userinfo of scheme://userinfo@host... sits, if the URL has one: [begin, end), end being the '@'.
struct UserinfoSpan {
  std::size_t begin = 0;
  std::size_t end = 0;
};
std::optional<UserinfoSpan> find_userinfo(std::string_view url);

// A comma-separated list of URLs ("amqp://a/v,amqp://b/v") cut into its URLs: a ',' starts a new URL only
// when a scheme and "://" follow it, so a comma elsewhere (a host list, an escaped password) stays where it
// is. One URL gives a list of one; an empty text gives one empty entry.
std::vector<std::string_view> split_url_list(std::string_view text);

}  // namespace imgpipe
