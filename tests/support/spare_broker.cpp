#include "spare_broker.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace imgpipe::test {
namespace {

std::string control_script() {
  const char* script = std::getenv("IMGPIPE_TEST_BROKER_CTL");
  if (script == nullptr || *script == '\0') FAIL("IMGPIPE_TEST_BROKER_CTL is not set: run the tests through scripts/test");
  return script;
}

// Runs a shell command and returns its stdout; fails the test when it fails.
std::string capture(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) FAIL("cannot run " + command);
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = ::pclose(pipe);
  if (status != 0) FAIL("broker control failed: " + command + " (status " + std::to_string(status) + ")");
  return out;
}

int spare_port(std::size_t index) {
  std::vector<int> ports;
  if (const char* listed = std::getenv("IMGPIPE_TEST_SPARE_BROKER_PORTS"); listed != nullptr && *listed) {
    const std::string text = listed;
    std::size_t begin = 0;
    while (true) {
      const auto comma = text.find(',', begin);
      ports.push_back(std::stoi(text.substr(begin, comma == std::string::npos ? comma : comma - begin)));
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
  } else {
    const std::string url = broker_url();  // amqp://user:pass@127.0.0.1:PORT/
    const int base = std::stoi(url.substr(url.rfind(':') + 1));
    ports = {base + 32, base + 64};
  }
  if (index >= ports.size()) FAIL("no spare broker port number " + std::to_string(index + 1));
  return ports[index];
}

}  // namespace

std::string broker_ctl_output(const std::string& verb) {
  return capture(control_script() + " " + verb);
}

SpareBroker::SpareBroker(std::size_t index) : port_(spare_port(index)) {
  ctl("start");
}

SpareBroker::~SpareBroker() {
  [[maybe_unused]] const int status = std::system((command("stop") + " >/dev/null 2>&1").c_str());
}

std::string SpareBroker::node() const {
  return "127.0.0.1:" + std::to_string(port_);
}

std::string SpareBroker::url() const {
  return "amqp://guest:guest@" + node() + "/";
}

std::string SpareBroker::command(const std::string& verb) const {
  return "IMGPIPE_BROKER_PORT=" + std::to_string(port_) + " " + control_script() + " " + verb + " '" +
         (dir_.path() / "node").string() + "'";
}

std::string SpareBroker::ctl(const std::string& verb) {
  return capture(command(verb));
}

}  // namespace imgpipe::test
