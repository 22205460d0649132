#include "imgpipe/logging.hpp"

#include <chrono>
#include <ctime>
#include <iostream>

namespace imgpipe {

Logger::Logger(std::string component, bool verbose) : component_(std::move(component)), verbose_(verbose) {}

void Logger::write(std::string_view level, std::string_view line) const {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
  std::lock_guard lock(mutex_);
  std::cerr << stamp << ' ' << level << ' ' << component_ << ": " << line << '\n' << std::flush;
}

LogFn Logger::as_log_fn() const {
  return [this](std::string_view level, std::string_view line) { write(level, line); };
}

}  // namespace imgpipe
