// SIGINT and SIGTERM as a flag that long-running loops check, so a worker finishes its batch and a job writes
// what it has instead of dying mid-write.
#pragma once

#include <atomic>
#include <thread>

namespace imgpipe {

// Turns SIGINT and SIGTERM into a flag, from a thread that waits for them (no signal-handler globals).
// Construct it in main before starting any other thread, so every thread inherits the blocked mask.
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  const std::atomic<bool>& flag() const { return stop_; }

 private:
  std::atomic<bool> stop_{false};
  std::thread waiter_;
};

}  // namespace imgpipe
