// How much of one job may be in the broker at once: images published and not yet answered.
//
// A publisher that sends its whole job before reading results turns the job into broker backlog. A job larger
// than the broker's free disk or memory then sets off the broker's alarm, which blocks every publishing
// connection, the workers' too (they publish their outputs before acking their inputs), so nothing drains and
// the alarm never clears. With a window the backlog of a job is O(window), not O(job), and another job's
// batches queue behind at most one window of this one's.
//
// The image count adapts, as TCP Vegas does: the window is the rate at which answers come back times the time
// an image needs when nothing queues (the shortest publish-to-answer time seen lately) plus a small allowance
// for queueing. While the pipeline has idle capacity the rate rises with the window (Little's law), so the
// window grows until the workers are busy; beyond that, more images in flight only wait in queues, where they
// delay every other job's images behind them. The byte count is a fixed cap.
//
// And the window drains now and then. A quorum queue (RabbitMQ 3.10) frees the disk its log takes only when
// the queue is empty, or at a checkpoint every 2048 messages enqueued: a queue that is never empty keeps the
// bytes of up to 2048 messages on disk, gigabytes when they are batches of photos, however few are in it at
// once. So after `drain_every_bytes` published, the window takes nothing more until every image in flight has
// been answered: the job's messages are then out of every stage queue, and the broker truncates their logs.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>

namespace imgpipe {

struct WindowLimits {
  std::size_t fixed_images = 0;  // > 0: exactly this many images in flight; 0: adaptive, as below
  std::size_t min_images = 0;    // adaptive floor; 0: four batches
  std::size_t max_images = 4096;
  std::size_t max_bytes = std::size_t{128} << 20;  // encoded image bytes in flight
  std::size_t drain_every_bytes = std::size_t{512}
                                  << 20;  // published between two moments of nothing in flight
  // Queueing allowed beyond the pipeline's own time: this, or half that time when it is longer.
  std::chrono::milliseconds queueing{250};
};

class InFlightWindow {
 public:
  using Clock = std::chrono::steady_clock;

  InFlightWindow(WindowLimits limits, std::size_t batch_size);

  // Whether a batch of `images` images and `bytes` bytes may be published now. An empty window admits any
  // batch, so one batch above the limits still goes (alone) instead of stalling the job.
  bool admits(std::size_t images, std::size_t bytes) const;
  void published(const std::string& image_id, std::size_t bytes, Clock::time_point now = Clock::now());
  // Answered by a result or a dead letter; ids not in flight (duplicates, unreadable inputs) are ignored.
  void answered(const std::string& image_id, Clock::time_point now = Clock::now());

  std::size_t images() const { return in_flight_.size(); }
  std::size_t bytes() const { return bytes_; }
  // Bytes published since the window was last empty (see drain_every_bytes).
  std::size_t bytes_since_drained() const { return bytes_since_drained_; }
  // The current image limit (the adaptive one moves with the rate of answers).
  std::size_t image_limit(Clock::time_point now = Clock::now()) const;
  // Images answered per second over the last few seconds (0 before any answer).
  double answer_rate(Clock::time_point now = Clock::now()) const;
  // The shortest publish-to-answer time of the last ten seconds (zero before any answer).
  std::chrono::nanoseconds unqueued_latency(Clock::time_point now = Clock::now()) const;

 private:
  WindowLimits limits_;
  std::size_t min_images_;
  struct Published {
    std::size_t bytes;
    Clock::time_point at;
  };
  std::unordered_map<std::string, Published> in_flight_;
  std::size_t bytes_ = 0;
  std::size_t bytes_since_drained_ = 0;
  struct Slot {  // the answers of 100 ms
    Clock::time_point start;
    std::size_t answers;
    Clock::duration shortest_latency;
  };
  mutable std::deque<Slot> slots_;
};

}  // namespace imgpipe
