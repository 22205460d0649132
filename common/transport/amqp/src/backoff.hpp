// Exponential reconnect delays with jitter, so workers that lost the same broker do not return in lockstep.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

namespace imgpipe {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap)
      : initial_(initial), cap_(std::max(cap, initial)), next_(initial), random_(std::random_device{}()) {}

  // A delay between half and all of the current step; the step doubles up to the cap.
  std::chrono::milliseconds next() {
    const auto step = next_;
    next_ = std::min(cap_, next_ * 2);
    std::uniform_int_distribution<std::chrono::milliseconds::rep> jitter(step.count() / 2, step.count());
    return std::chrono::milliseconds(jitter(random_));
  }

  void reset() { next_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds cap_;
  std::chrono::milliseconds next_;
  std::minstd_rand random_;
};

// Sleeps for `delay` unless `stop` turns true first; checks every 100 ms, which is all a stop needs.
inline void sleep_unless_stopped(std::chrono::milliseconds delay, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + delay;
  while (!stop && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(100), until - std::chrono::steady_clock::now()));
  }
}

}  // namespace imgpipe
