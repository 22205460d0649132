// Resolving URLs that may carry a password: refuse it on the command line, take it from a file.
#include "imgpipe/ops/credentials.hpp"
#include "imgpipe/ops/url.hpp"

#include <fstream>
#include <iterator>

namespace imgpipe {
namespace {

std::string where_passwords_go(const SecretUrlOption& option) {
  return "put the whole URL in the " + option.env +
         " environment variable, or give the URL without the "
         "password and the password alone in a file named by " +
         option.password_flag + " or " + option.password_env +
         " (a mounted Kubernetes Secret or Docker secret is such a file)";
}

}  // namespace

bool url_has_password(std::string_view url) {
  // A list of URLs (several brokers) has a password if any of them has one.
  for (const std::string_view one : split_url_list(url)) {
    const auto userinfo = find_userinfo(one);
    if (userinfo &&
        one.substr(userinfo->begin, userinfo->end - userinfo->begin).find(':') != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

std::string read_password_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CredentialError("cannot read the password file " + file.string());
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (content.ends_with("\r\n")) {
    content.resize(content.size() - 2);
  } else if (content.ends_with('\n')) {
    content.pop_back();
  }
  if (content.empty()) throw CredentialError("the password file " + file.string() + " is empty");
  if (content.find_first_of("\r\n") != std::string::npos) {
    throw CredentialError("the password file " + file.string() +
                          " holds more than one line; it must hold the password alone");
  }
  return content;
}

std::string resolve_secret_url(const SecretUrlOption& option, const SecretUrlSources& sources,
                               const std::string& fallback) {
  if (sources.command_line && url_has_password(*sources.command_line)) {
    throw CredentialError(option.flag +
                          " must not carry a password: the command line is visible to every user of this "
                          "machine (ps, /proc/PID/cmdline) and stays in shell history; " +
                          where_passwords_go(option));
  }
  std::string url = sources.command_line  ? *sources.command_line
                    : sources.environment ? *sources.environment
                                          : fallback;
  if (!sources.password_file) return url;

  const std::string from = sources.command_line  ? option.flag
                           : sources.environment ? option.env
                                                 : "the default URL";
  if (url_has_password(url)) {
    throw CredentialError("the URL from " + from + " already has a password and " + option.password_flag +
                          " (or " + option.password_env + ") gives another: give only one of them");
  }
  // Every URL of a list gets the password (the nodes of one cluster share their users).
  const std::string password = ":" + percent_encode(read_password_file(*sources.password_file));
  std::string out;
  for (const std::string_view one : split_url_list(url)) {
    const auto userinfo = find_userinfo(one);
    if (!userinfo) {
      throw CredentialError("a password file (" + option.password_flag + " or " + option.password_env +
                            ") needs a user name in " + (out.empty() ? "the URL" : "every URL of the list") +
                            " from " + from + ", as in scheme://USER@host:port/");
    }
    if (!out.empty()) out += ',';
    out += one.substr(0, userinfo->end);
    out += password;
    out += one.substr(userinfo->end);
  }
  return out;
}

}  // namespace imgpipe
