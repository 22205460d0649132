#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

namespace imgpipe::test {
namespace {
std::string required_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    FAIL(std::string(name) + " is not set: run the tests through scripts/test (or ctest from its build dir)");
  }
  return value;
}

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}
}  // namespace

// The build compiles in where the tree and the build are; the environment may point elsewhere.
std::filesystem::path source_dir() {
  return env_or("IMGPIPE_SOURCE_DIR", IMGPIPE_SOURCE_DIR);
}
std::filesystem::path binary_dir() {
  return env_or("IMGPIPE_BINARY_DIR", IMGPIPE_BINARY_DIR);
}
std::filesystem::path models_dir() {
  return source_dir() / "models";
}

TempDir::TempDir(const std::string& prefix) {
  std::random_device entropy;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(entropy()));
    if (std::filesystem::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory for " + prefix);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::vector<std::uint8_t> read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::filesystem::path& file, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

std::string broker_url() {
  return required_env("IMGPIPE_TEST_BROKER");
}

std::map<std::string, std::string> broker_environment() {
  return {{"IMGPIPE_BROKER", broker_url()}};
}

void broker_ctl(const std::string& verb) {
  const std::string command = required_env("IMGPIPE_TEST_BROKER_CTL") + " " + verb;
  const int status = std::system(command.c_str());
  if (status != 0) FAIL("broker control failed: " + command + " (status " + std::to_string(status) + ")");
}

}  // namespace imgpipe::test

namespace imgpipe::test {
namespace {
std::filesystem::path existing(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path))
    FAIL("test photo " + path.string() + " is missing: run scripts/install-deps");
  return path;
}
}  // namespace

std::filesystem::path opencv_photo(const std::string& name) {
  return existing(std::filesystem::path("/usr/share/doc/opencv-doc/examples/data") / name);
}

std::filesystem::path skimage_photo(const std::string& name) {
  return existing(std::filesystem::path("/usr/lib/python3/dist-packages/skimage/data") / name);
}
}  // namespace imgpipe::test

namespace imgpipe::test {
std::string read_text_file(const std::filesystem::path& file) {
  const auto bytes = read_file(file);
  return std::string(bytes.begin(), bytes.end());
}
}  // namespace imgpipe::test

namespace imgpipe::test {
namespace {
// Closes the socket on every way out of http_get.
class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (fd_ < 0) throw std::runtime_error("socket() failed");
  }
  ~Socket() { ::close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};
}  // namespace

std::string http_get(int port, const std::string& path) {
  const std::string where = "http://127.0.0.1:" + std::to_string(port) + path;
  Socket socket;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(socket.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error("cannot connect to " + where);
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  for (std::size_t sent = 0; sent < request.size();) {
    const auto n = ::send(socket.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("cannot send the request to " + where);
    sent += static_cast<std::size_t>(n);
  }
  std::string response;
  char buffer[4096];
  while (true) {
    const auto n = ::recv(socket.fd(), buffer, sizeof buffer, 0);
    if (n < 0) throw std::runtime_error("cannot read the answer of " + where);
    if (n == 0) break;
    response.append(buffer, static_cast<std::size_t>(n));
  }
  const auto status_end = response.find("\r\n");
  const auto body = response.find("\r\n\r\n");
  if (status_end == std::string::npos || body == std::string::npos)
    throw std::runtime_error(where + " sent no HTTP answer");
  const std::string status = response.substr(0, status_end);
  if (status.find(" 200") == std::string::npos) throw std::runtime_error(where + " answered " + status);
  return response.substr(body + 4);
}
}  // namespace imgpipe::test

namespace imgpipe::test {

std::string s3_endpoint() {
  return required_env("IMGPIPE_TEST_S3_ENDPOINT");
}
std::string s3_access_key() {
  return required_env("IMGPIPE_TEST_S3_ACCESS_KEY");
}
std::string s3_secret_key() {
  return required_env("IMGPIPE_TEST_S3_SECRET_KEY");
}
std::string s3_server_pid() {
  return required_env("IMGPIPE_TEST_S3_SERVER_PID");
}

std::map<std::string, std::string> s3_environment() {
  return {{"IMGPIPE_S3_ENDPOINT", s3_endpoint()},
          {"AWS_ACCESS_KEY_ID", s3_access_key()},
          {"AWS_SECRET_ACCESS_KEY", s3_secret_key()}};
}

std::string unique_bucket(const std::string& what) {
  std::random_device entropy;
  std::string name = "imgpipe-" + what + "-";
  for (int i = 0; i < 8; ++i) name += "0123456789abcdef"[entropy() % 16];
  return name;
}

}  // namespace imgpipe::test
