// One line per event on stderr: "2026-11-23T20:41:07Z info  feature: ...". Thread-safe.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "imgpipe/broker.hpp"

namespace imgpipe {

class Logger {
 public:
  explicit Logger(std::string component, bool verbose = false);
  void info(std::string_view line) const { write("info", line); }
  void warn(std::string_view line) const { write("warn", line); }
  void error(std::string_view line) const { write("error", line); }
  void debug(std::string_view line) const {
    if (verbose_) write("debug", line);
  }
  void write(std::string_view level, std::string_view line) const;
  LogFn as_log_fn() const;

 private:
  std::string component_;
  bool verbose_;
  mutable std::mutex mutex_;
};

}  // namespace imgpipe
