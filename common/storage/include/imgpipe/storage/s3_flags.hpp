// The object-storage flags of the workers and of `imgpipe submit`/`run` (CLI11, header-only like
// ops/secret_url_flags.hpp, so only the mains pay for CLI11). Every flag has its variable; the secrets have
// none on the command line at all: AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, or a file named here.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "imgpipe/storage/s3_config.hpp"

namespace imgpipe {

struct S3Flags {
  S3Config config;
  std::string path_style = "auto";
  std::string secret_key_file;
  std::string session_token_file;

  // Call once parsing succeeded: the configuration with its credentials. Throws CredentialError.
  S3Config resolve() const {
    S3Config resolved = config;
    if (path_style != "auto") resolved.path_style = path_style == "on";
    S3CredentialSources sources;
    if (!secret_key_file.empty()) sources.secret_key_file = secret_key_file;
    if (!session_token_file.empty()) sources.session_token_file = session_token_file;
    resolved.credentials = resolve_s3_credentials(sources);
    return resolved;
  }
};

inline void add_s3_flags(CLI::App& app, S3Flags& flags) {
  const std::string group = "Object storage (s3:// inputs)";
  app.add_option("--s3-endpoint", flags.config.endpoint,
                 "S3-compatible server, http[s]://host[:port] (MinIO, Garage, Ceph...; default: AWS)")
      ->envname("IMGPIPE_S3_ENDPOINT")
      ->group(group);
  app.add_option("--s3-region", flags.config.region, "Region requests are signed for")
      ->envname("IMGPIPE_S3_REGION")
      ->capture_default_str()
      ->group(group);
  app.add_option(
         "--s3-path-style", flags.path_style,
         "Path-style addressing (endpoint/bucket/key): on, off (bucket.endpoint/key), or auto (on with "
         "--s3-endpoint, off on AWS)")
      ->envname("IMGPIPE_S3_PATH_STYLE")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str()
      ->group(group);
  app.add_option("--s3-secret-key-file", flags.secret_key_file,
                 "File holding the secret access key alone (else AWS_SECRET_ACCESS_KEY; the key id is "
                 "AWS_ACCESS_KEY_ID; neither: unsigned requests)")
      ->envname("IMGPIPE_S3_SECRET_KEY_FILE")
      ->group(group);
  app.add_option("--s3-session-token-file", flags.session_token_file,
                 "File holding a session token alone (else AWS_SESSION_TOKEN)")
      ->envname("IMGPIPE_S3_SESSION_TOKEN_FILE")
      ->group(group);
  app.add_option("--s3-attempts", flags.config.attempts,
                 "Tries per request when the server answers 5xx or the network fails")
      ->envname("IMGPIPE_S3_ATTEMPTS")
      ->check(CLI::Range(1, 20))
      ->capture_default_str()
      ->group(group);
}

}  // namespace imgpipe
