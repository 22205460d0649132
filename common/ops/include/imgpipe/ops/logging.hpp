// One line per event on stderr, as text ("2026-11-23T20:41:07Z info feature: job J image I failed ...") or as
// JSON lines ({"ts":...,"level":...,"component":...,"msg":...,"job":...,"image":...}) for log collectors.
// Thread-safe.
#pragma once

#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>

namespace imgpipe {

// How lower layers (the transport, the job runner) report events without knowing about Logger.
// Must be thread-safe.
using LogFn = std::function<void(std::string_view level, std::string_view line)>;

enum class LogFormat { text, json };

// A structured field of a log line, such as {"job", id} or {"image", image_id}.
struct LogField {
  std::string_view key;
  std::string_view value;
};

class Logger {
 public:
  explicit Logger(std::string component, bool verbose = false, LogFormat format = LogFormat::text);
  void info(std::string_view line) const { write("info", line); }
  void warn(std::string_view line) const { write("warn", line); }
  void error(std::string_view line) const { write("error", line); }
  void debug(std::string_view line) const { write("debug", line); }
  void write(std::string_view level, std::string_view line) const { event(level, line, {}); }
  // In text the fields come first as "key value" words, so "failed in preprocess: ..." with job and image
  // reads "job J image I failed in preprocess: ..."; in JSON they are members of the line's object.
  void event(std::string_view level, std::string_view text, std::initializer_list<LogField> fields) const;
  // For the transport; the Logger must outlive the function.
  LogFn as_log_fn() const;

 private:
  std::string component_;
  bool verbose_;
  LogFormat format_;
  mutable std::mutex mutex_;
};

}  // namespace imgpipe
