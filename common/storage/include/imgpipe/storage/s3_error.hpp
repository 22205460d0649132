// A request to the object store that failed, with what the server or the network said.
#pragma once

#include <stdexcept>
#include <string>

namespace imgpipe {

// what(): "s3://bucket/key: 404 NoSuchKey", "s3://bucket/: 403 SignatureDoesNotMatch (The request
// signature we calculated does not match ...)", "s3://bucket/key: Timeout was reached (after 4 attempts)".
// Never a credential: requests are signed in headers that are not part of any message.
class S3Error : public std::runtime_error {
 public:
  S3Error(const std::string& what, long http_status, std::string code)
      : std::runtime_error(what), http_status_(http_status), code_(std::move(code)) {}
  long http_status() const { return http_status_; }  // 0 when no answer came (network, timeout)
  const std::string& code() const { return code_; }  // S3's error code ("NoSuchKey"), or empty

 private:
  long http_status_;
  std::string code_;
};

}  // namespace imgpipe
