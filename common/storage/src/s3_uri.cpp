#include "imgpipe/storage/s3_uri.hpp"

#include <stdexcept>

namespace imgpipe {

namespace {
constexpr std::string_view kScheme = "s3://";
}

bool is_s3_uri(std::string_view text) {
  return text.starts_with(kScheme);
}

S3Uri parse_s3_uri(std::string_view text) {
  if (!is_s3_uri(text)) throw std::invalid_argument("not an s3:// URI: " + std::string(text));
  const std::string_view rest = text.substr(kScheme.size());
  const auto slash = rest.find('/');
  S3Uri uri{std::string(rest.substr(0, slash)),
            slash == std::string_view::npos ? std::string() : std::string(rest.substr(slash + 1))};
  // S3's bucket naming rules, loosely: 3-63 of [a-z0-9.-] (MinIO and Ceph accept the same or fewer).
  if (uri.bucket.size() < 3 || uri.bucket.size() > 63 ||
      uri.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos) {
    throw std::invalid_argument(std::string(text) +
                                ": a bucket name is 3 to 63 lower-case letters, digits, '.' and '-'");
  }
  return uri;
}

std::string s3_uri(std::string_view bucket, std::string_view key) {
  return std::string(kScheme) + std::string(bucket) + "/" + std::string(key);
}

std::string to_string(const S3Uri& uri) {
  return s3_uri(uri.bucket, uri.key);
}

}  // namespace imgpipe
