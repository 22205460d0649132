// Where a password for the broker or the management API may come from: the environment or a file, never
// the command line. Every user of a machine can read any process's arguments (ps, /proc/PID/cmdline), and
// shells keep them in their history; /proc/PID/environ and a mode-0600 file are readable by the owner only.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace imgpipe {

// A credential given where it must not be, or a password file that cannot be used. The main prints it as a
// usage error (exit 2). Messages name the flag, variable or file, never the password.
class CredentialError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// One URL option that may carry a password, and the names a user sees in error messages.
struct SecretUrlOption {
  std::string flag;           // "--broker"
  std::string env;            // "IMGPIPE_BROKER"
  std::string password_flag;  // "--broker-password-file"
  std::string password_env;   // "IMGPIPE_BROKER_PASSWORD_FILE"
};

inline SecretUrlOption broker_url_option() {
  return {"--broker", "IMGPIPE_BROKER", "--broker-password-file", "IMGPIPE_BROKER_PASSWORD_FILE"};
}
inline SecretUrlOption management_url_option() {
  return {"--management", "IMGPIPE_MANAGEMENT", "--management-password-file",
          "IMGPIPE_MANAGEMENT_PASSWORD_FILE"};
}

// What the user gave, and where. `command_line` must hold only what was typed on the command line (not
// filled in from the environment by the flag parser): that is the one place a password is refused.
struct SecretUrlSources {
  std::optional<std::string> command_line;
  std::optional<std::string> environment;
  std::optional<std::filesystem::path> password_file;  // from its flag or its variable: a path is no secret
};

// True when the URL's userinfo has a password part ("user:pass@"), even an empty one.
bool url_has_password(std::string_view url);

// The file's content without one trailing newline ("echo pass > file" and `kubectl create secret
// --from-file` both work). Throws CredentialError when it cannot be read, is empty, or holds more lines.
std::string read_password_file(const std::filesystem::path& file);

// The URL to connect to: the command line's, else the environment's, else `fallback` (which may be empty);
// with the password file's content put in as the password. Throws CredentialError when the command line
// holds a password, or a password file comes with a URL that already has one or names no user.
std::string resolve_secret_url(const SecretUrlOption& option, const SecretUrlSources& sources,
                               const std::string& fallback);

}  // namespace imgpipe
