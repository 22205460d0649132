// Real child processes for end-to-end specs: workers that run until stopped, and tool runs to completion.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace imgpipe::test {

// Variables set in a child's environment on top of the test's own: how tests hand a child its broker URL,
// since a password on the command line is refused (and would be visible in /proc/PID/cmdline).
using Environment = std::map<std::string, std::string>;

// A running executable; SIGTERM and wait on destruction (SIGKILL after a grace period).
class ChildProcess {
 public:
  ChildProcess(const std::filesystem::path& executable, const std::vector<std::string>& arguments,
               const std::filesystem::path& log_file, const Environment& environment = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void kill_hard();                  // SIGKILL, the crash a worker must survive
  int stop(int grace_seconds = 30);  // SIGTERM, wait; returns the exit status (or -signal)
  // Waits for it to exit by itself (SIGKILL after `timeout_seconds`); returns the exit status (or -signal).
  int wait(int timeout_seconds);

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs to completion and captures stdout and stderr (through files, so nothing can block).
RunResult run_tool(const std::filesystem::path& executable, const std::vector<std::string>& arguments,
                   int timeout_seconds = 600, const Environment& environment = {});

std::filesystem::path worker_binary(const std::string& name);  // <build>/workers/<name>

}  // namespace imgpipe::test
