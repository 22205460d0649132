// s3://bucket/key: how a user names an object or a prefix of a bucket.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace imgpipe {

struct S3Uri {
  std::string bucket;
  std::string key;  // an object's key, or a prefix (possibly empty: the whole bucket)
};

bool is_s3_uri(std::string_view text);

// Throws std::invalid_argument saying what is wrong: no bucket, or a bucket name S3 does not allow.
S3Uri parse_s3_uri(std::string_view text);

// "s3://bucket/key", as the user would write it (the key is not percent-encoded).
std::string to_string(const S3Uri& uri);
std::string s3_uri(std::string_view bucket, std::string_view key);

}  // namespace imgpipe
