#include "imgpipe/ops/logging.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <iostream>

namespace imgpipe {

namespace {

// Seconds for text, which people read; milliseconds for JSON, which collectors order by.
std::string timestamp(LogFormat format) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  if (format == LogFormat::text) return std::string(stamp) + "Z";
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  char fraction[8];
  std::snprintf(fraction, sizeof fraction, ".%03dZ", static_cast<int>(millis));
  return std::string(stamp) + fraction;
}

}  // namespace

Logger::Logger(std::string component, bool verbose, LogFormat format)
    : component_(std::move(component)), verbose_(verbose), format_(format) {}

void Logger::event(std::string_view level, std::string_view text,
                   std::initializer_list<LogField> fields) const {
  if (level == "debug" && !verbose_) return;
  std::string line;
  if (format_ == LogFormat::json) {
    nlohmann::ordered_json object;
    object["ts"] = timestamp(format_);
    object["level"] = level;
    object["component"] = component_;
    object["msg"] = text;
    for (const auto& field : fields) object[std::string(field.key)] = field.value;
    // Image ids are file paths and need not be UTF-8: replace bad bytes rather than lose the line.
    line = object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  } else {
    line = timestamp(format_) + ' ' + std::string(level) + ' ' + component_ + ": ";
    for (const auto& field : fields) line.append(field.key).append(" ").append(field.value).append(" ");
    line.append(text);
  }
  std::lock_guard lock(mutex_);
  std::cerr << line << '\n' << std::flush;
}

LogFn Logger::as_log_fn() const {
  return [this](std::string_view level, std::string_view line) { write(level, line); };
}

}  // namespace imgpipe
