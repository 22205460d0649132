#include "imgpipe/messages/protocol.hpp"

#include <charconv>
#include <cstdint>

namespace imgpipe {

std::string queues::results_for(std::string_view job_id) {
  return "imgpipe.results." + std::string(job_id);
}

void stamp_published(Headers& tags, std::chrono::system_clock::time_point now) {
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  tags[headers::published_ms] = std::to_string(millis);
}

std::optional<std::chrono::system_clock::time_point> published_at(const Headers& tags) {
  const auto found = tags.find(headers::published_ms);
  if (found == tags.end()) return std::nullopt;
  const std::string& text = found->second;
  std::int64_t millis = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), millis);
  if (error != std::errc() || end != text.data() + text.size() || millis < 0) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(millis));
}

}  // namespace imgpipe
