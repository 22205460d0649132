// Two halves of a loop on two threads: a producer makes items on a thread of its own while the calling thread
// consumes the ones made before. Local mode decodes the next batch this way while the network runs on this
// one, the overlap broker mode gets from its separate worker processes.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>

namespace imgpipe {
namespace overlapped_detail {

// Thrown by emit() inside the producer once the consumer has gone, to unwind it. Not a std::exception, so
// that a producer's own `catch (const std::exception&)` does not swallow it and carry on.
struct Abandoned {};

// The bounded queue between the two threads; `depth` items at most, so the producer cannot run far ahead and
// memory stays bounded however slow the consumer is.
template <typename Item>
class Handoff {
 public:
  explicit Handoff(std::size_t depth) : depth_(depth > 0 ? depth : 1) {}

  // Producer: waits for room. Throws Abandoned when `stop` is requested (the consumer has gone).
  void push(Item item, std::stop_token stop) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, stop, [&] { return items_.size() < depth_; });
    // Checked even when there is room (wait() then returns true despite the stop request): pushing would
    // only set the producer to work on another item that no one takes.
    if (stop.stop_requested()) throw Abandoned{};
    items_.push_back(std::move(item));
    ready_.notify_one();
  }
  // Producer: no more items; `error`, if any, is what ended it.
  void finish(std::exception_ptr error) {
    const std::lock_guard lock(mutex_);
    done_ = true;
    error_ = std::move(error);
    ready_.notify_one();
  }
  // Consumer: the next item in the order pushed; nullopt after the last one. Rethrows the producer's error
  // once the items it pushed before failing have been taken, as if both halves ran on one thread.
  std::optional<Item> pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !items_.empty() || done_; });
    if (items_.empty()) {
      if (error_) std::rethrow_exception(error_);
      return std::nullopt;
    }
    std::optional<Item> item(std::move(items_.front()));
    items_.pop_front();
    room_.notify_one();
    return item;
  }

 private:
  const std::size_t depth_;
  std::mutex mutex_;
  std::condition_variable_any room_;  // _any: its wait can be woken by a stop request
  std::condition_variable ready_;
  std::deque<Item> items_;
  bool done_ = false;
  std::exception_ptr error_;
};

}  // namespace overlapped_detail

// Calls produce(emit) on a new thread and consume(item) on this one for every item that emit(item) was
// given, in that order. At most `depth` items wait in between (the producer blocks in emit until there is
// room), so the producer is at most depth + 1 items ahead.
// An exception from produce is rethrown here after the items emitted before it have been consumed. One from
// consume makes the producer's next emit throw to end it, and is rethrown here once that thread is joined,
// so no exception is lost and nothing hangs; a producer in the middle of an item finishes that item first.
// The thread inherits this thread's signal mask (see StopSignal), so signals still reach their waiter.
template <typename Item, typename Produce, typename Consume>
void run_overlapped(std::size_t depth, Produce&& produce, Consume&& consume) {
  overlapped_detail::Handoff<Item> handoff(depth);
  // Declared after the hand-off, so it is stopped and joined (jthread's destructor) before the hand-off dies,
  // however this function is left.
  const std::jthread producer([&](std::stop_token stop) {
    try {
      produce([&](Item item) { handoff.push(std::move(item), stop); });
      handoff.finish(nullptr);
    } catch (const overlapped_detail::Abandoned&) {
      // The consumer has gone and rethrows its own exception; no one waits for this thread's items.
    } catch (...) {
      handoff.finish(std::current_exception());
    }
  });
  while (std::optional<Item> item = handoff.pop()) consume(std::move(*item));
}

}  // namespace imgpipe
