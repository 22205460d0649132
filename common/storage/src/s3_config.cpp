#include "imgpipe/storage/s3_config.hpp"

#include <cstdlib>

#include "imgpipe/ops/credentials.hpp"

namespace imgpipe {
namespace {

std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

// One secret from its variable or its file, never both.
std::string secret_from(const char* variable, const std::optional<std::filesystem::path>& file,
                        const char* file_names) {
  const auto from_environment = environment(variable);
  if (from_environment && file) {
    throw CredentialError(std::string(variable) + " and " + file_names +
                          " both give the same secret: give only one of them");
  }
  if (file) return read_password_file(*file);
  return from_environment.value_or("");
}

}  // namespace

std::string S3Config::endpoint_or_default() const {
  return endpoint.empty() ? "https://s3." + region + ".amazonaws.com" : endpoint;
}

S3Credentials resolve_s3_credentials(const S3CredentialSources& sources) {
  S3Credentials credentials;
  credentials.access_key_id = environment("AWS_ACCESS_KEY_ID").value_or("");
  credentials.secret_access_key = secret_from("AWS_SECRET_ACCESS_KEY", sources.secret_key_file,
                                              "--s3-secret-key-file (IMGPIPE_S3_SECRET_KEY_FILE)");
  credentials.session_token = secret_from("AWS_SESSION_TOKEN", sources.session_token_file,
                                          "--s3-session-token-file (IMGPIPE_S3_SESSION_TOKEN_FILE)");
  if (credentials.access_key_id.empty() && !credentials.secret_access_key.empty()) {
    throw CredentialError("an S3 secret key was given without its key id: set AWS_ACCESS_KEY_ID too");
  }
  if (!credentials.access_key_id.empty() && credentials.secret_access_key.empty()) {
    throw CredentialError(
        "AWS_ACCESS_KEY_ID is set but no secret key: set AWS_SECRET_ACCESS_KEY, or name a file holding it "
        "with --s3-secret-key-file (IMGPIPE_S3_SECRET_KEY_FILE)");
  }
  if (credentials.access_key_id.empty() && !credentials.session_token.empty()) {
    throw CredentialError("an S3 session token was given without AWS_ACCESS_KEY_ID and its secret key");
  }
  return credentials;
}

}  // namespace imgpipe
