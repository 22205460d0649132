// A job's progress as the user watches it on stderr.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace imgpipe {

// Progress on stderr: a redrawn bar on a terminal, plain lines (at most every few seconds) otherwise.
class Progress {
 public:
  Progress(std::string what, std::size_t total, bool enabled = true);
  void update(std::size_t done, std::size_t failed);
  void finish(std::size_t done, std::size_t failed);

 private:
  std::string what_;
  std::size_t total_;
  bool enabled_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  std::size_t shown_ = static_cast<std::size_t>(-1);  // the count on the last line drawn
};

}  // namespace imgpipe
