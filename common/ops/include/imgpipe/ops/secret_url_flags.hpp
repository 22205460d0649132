// CLI11 flags for a URL that may carry a password (--broker, --management), header-only like
// worker_flags.hpp so only the mains pay for CLI11.
//
// The URL flag deliberately has no CLI11 envname: CLI11 fills an option from its variable in a way that
// looks the same as a command-line value afterwards, and only the command line must refuse a password.
// The variable is read here instead, after parsing, so the two stay apart.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <string>
#include <utility>

#include "imgpipe/ops/credentials.hpp"

namespace imgpipe {

struct SecretUrlFlags {
  explicit SecretUrlFlags(SecretUrlOption names) : option(std::move(names)) {}

  SecretUrlOption option;
  std::string command_line;
  std::string password_file;
  CLI::Option* url_flag = nullptr;
  CLI::Option* password_flag = nullptr;

  // Call once parsing succeeded. Throws CredentialError (a usage error).
  std::string resolve(const std::string& fallback) const {
    SecretUrlSources sources;
    if (url_flag->count() > 0) sources.command_line = command_line;
    if (const char* env = std::getenv(option.env.c_str()); env != nullptr && *env != '\0') {
      sources.environment = std::string(env);
    }
    if (!password_file.empty()) sources.password_file = password_file;
    return resolve_secret_url(option, sources, fallback);
  }
};

// `what` describes the URL for --help, e.g. "Broker URL, amqp[s]://user@host:port/vhost".
inline void add_secret_url_flags(CLI::App& app, SecretUrlFlags& flags, const std::string& what) {
  flags.url_flag = app.add_option(
      flags.option.flag, flags.command_line,
      what +
          ". Without a password: a password here is refused, since any user can read a command line. "
          "Env: " +
          flags.option.env + " (may hold the password)");
  flags.password_flag = app.add_option(flags.option.password_flag, flags.password_file,
                                       "File holding the password alone (a mounted Kubernetes Secret or "
                                       "Docker secret)")
                            ->envname(flags.option.password_env);
}

}  // namespace imgpipe
