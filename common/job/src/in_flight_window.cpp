#include "imgpipe/job/in_flight_window.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

namespace imgpipe {
namespace {

// Answers are counted over this span: long enough to smooth batch-sized bursts, short enough to follow a
// second job starting or a replica leaving.
constexpr auto kRateSpan = std::chrono::seconds(3);
// The unqueued latency is the shortest of this span: long enough to hold a sample from a moment when the
// queues were short, short enough to notice that the pipeline became slower (another model, fewer replicas).
constexpr auto kLatencySpan = std::chrono::seconds(10);
constexpr auto kSlot = std::chrono::milliseconds(100);

double seconds(InFlightWindow::Clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

}  // namespace

InFlightWindow::InFlightWindow(WindowLimits limits, std::size_t batch_size)
    : limits_(limits),
      min_images_(
          std::min(limits.min_images > 0 ? limits.min_images : 4 * std::max<std::size_t>(batch_size, 1),
                   std::max<std::size_t>(limits.max_images, 1))) {}

bool InFlightWindow::admits(std::size_t images, std::size_t bytes) const {
  if (in_flight_.empty()) return true;
  return in_flight_.size() + images <= image_limit() && bytes_ + bytes <= limits_.max_bytes &&
         bytes_since_drained_ + bytes <= limits_.drain_every_bytes;
}

void InFlightWindow::published(const std::string& image_id, std::size_t bytes, Clock::time_point now) {
  const auto [entry, added] = in_flight_.emplace(image_id, Published{bytes, now});
  if (!added) return;
  bytes_ += bytes;
  bytes_since_drained_ += bytes;
}

void InFlightWindow::answered(const std::string& image_id, Clock::time_point now) {
  const auto entry = in_flight_.find(image_id);
  if (entry == in_flight_.end()) return;
  const Clock::duration latency = now - entry->second.at;
  bytes_ -= entry->second.bytes;
  in_flight_.erase(entry);
  if (in_flight_.empty()) bytes_since_drained_ = 0;
  if (slots_.empty() || now - slots_.back().start >= kSlot) {
    slots_.push_back({now, 1, latency});
  } else {
    ++slots_.back().answers;
    slots_.back().shortest_latency = std::min(slots_.back().shortest_latency, latency);
  }
  while (now - slots_.front().start > kLatencySpan) slots_.pop_front();
}

double InFlightWindow::answer_rate(Clock::time_point now) const {
  std::size_t answers = 0;
  for (const auto& slot : slots_)
    if (now - slot.start <= kRateSpan) answers += slot.answers;
  return static_cast<double>(answers) / seconds(kRateSpan);
}

std::chrono::nanoseconds InFlightWindow::unqueued_latency(Clock::time_point now) const {
  std::optional<Clock::duration> shortest;
  for (const auto& slot : slots_) {
    if (now - slot.start > kLatencySpan) continue;
    shortest = std::min(shortest.value_or(slot.shortest_latency), slot.shortest_latency);
  }
  return std::chrono::duration_cast<std::chrono::nanoseconds>(shortest.value_or(Clock::duration::zero()));
}

std::size_t InFlightWindow::image_limit(Clock::time_point now) const {
  if (limits_.fixed_images > 0) return limits_.fixed_images;
  const auto unqueued = unqueued_latency(now);
  const auto allowance = std::max<Clock::duration>(limits_.queueing, unqueued / 2);
  const double wanted = answer_rate(now) * seconds(unqueued + allowance);
  const auto images = static_cast<std::size_t>(std::llround(wanted));
  return std::clamp(images, min_images_, std::max(limits_.max_images, min_images_));
}

}  // namespace imgpipe
