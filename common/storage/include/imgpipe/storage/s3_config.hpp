// Where the object store is and who we are to it. Credentials come from the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or from files, never from the command line,
// by the same rules as the broker password (ops/credentials.hpp); they are never logged.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace imgpipe {

struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials (STS); empty otherwise
  // No key: requests go unsigned (a public bucket).
  bool anonymous() const { return access_key_id.empty(); }
};

struct S3Config {
  // http[s]://host[:port] of an S3-compatible server; empty: AWS, https://s3.REGION.amazonaws.com.
  std::string endpoint;
  std::string region = "us-east-1";
  // Path-style (endpoint/bucket/key) or virtual-hosted (bucket.endpoint/key) addressing. Unset: path-style
  // with a custom endpoint (MinIO, Garage, Ceph, s3s), virtual-hosted on AWS.
  std::optional<bool> path_style;
  S3Credentials credentials;
  int attempts = 4;  // per request, when the server answers 5xx or the network fails or times out
  std::chrono::milliseconds first_backoff{200};  // doubled after each failed attempt, with jitter
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds stall_timeout{30};  // a transfer that moves less than 1 KiB/s for this long fails
  int list_page_size = 1000;               // keys per ListObjectsV2 answer (max-keys); 1000 is S3's most

  bool uses_path_style() const { return path_style.value_or(!endpoint.empty()); }
  // The endpoint requests go to, for logs and error messages (it holds no secret).
  std::string endpoint_or_default() const;
};

// Where the secret parts may come from besides the environment: files holding the value alone (a mounted
// Kubernetes Secret or Docker secret), as read_password_file reads them.
struct S3CredentialSources {
  std::optional<std::filesystem::path> secret_key_file;  // --s3-secret-key-file, IMGPIPE_S3_SECRET_KEY_FILE
  std::optional<std::filesystem::path> session_token_file;  // --s3-session-token-file, ..._SESSION_TOKEN_FILE
};

// The credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN and the files. Throws
// CredentialError (a usage error) when a secret comes from both a variable and a file, when a secret key has
// no key id or a key id no secret key, or when a file cannot be read. None at all: anonymous.
S3Credentials resolve_s3_credentials(const S3CredentialSources& sources);

}  // namespace imgpipe
