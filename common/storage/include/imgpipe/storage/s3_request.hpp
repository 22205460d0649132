// How S3 requests are addressed: URLs with keys encoded as SigV4 signs them. Public for the specs of the
// encoding edge cases (spaces, '+', unicode, '%' in keys).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "imgpipe/storage/s3_config.hpp"

namespace imgpipe {

// AWS's URI encoding (the one SigV4's canonical request uses): every byte but A-Z a-z 0-9 - . _ ~ becomes
// %XY (upper-case hex), UTF-8 byte by byte; '/' is kept when `keep_slash` (object keys in a path).
std::string s3_encode(std::string_view text, bool keep_slash);

// The URL of a bucket (empty key) or an object, path-style or virtual-hosted as the configuration says,
// with `query` appended (already encoded: s3_query).
std::string s3_url(const S3Config& config, std::string_view bucket, std::string_view key,
                   std::string_view query = {});

// "a=1&b=x%2By" from name/value pairs, sorted by name and encoded, as SigV4's canonical query string wants
// it: libcurl 7.88 signs the query as it is sent, so it must already be canonical.
std::string s3_query(std::vector<std::pair<std::string, std::string>> parameters);

}  // namespace imgpipe
