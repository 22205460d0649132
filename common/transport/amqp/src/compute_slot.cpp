#include "compute_slot.hpp"

#include <exception>
#include <utility>

namespace imgpipe {

ComputeSlot::ComputeSlot(const DeliveryHandler& handler, EventFd& done)
    : handler_(handler), done_(done), thread_([this](std::stop_token stop) { loop(stop); }) {}

ComputeSlot::~ComputeSlot() {
  thread_.request_stop();
  thread_.join();
}

void ComputeSlot::submit(std::uint64_t connection_epoch, IncomingMessage message) {
  {
    std::lock_guard lock(mutex_);
    job_.emplace(connection_epoch, std::move(message));
  }
  busy_ = true;
  wakeup_.notify_one();
}

std::optional<ComputeSlot::Result> ComputeSlot::take() {
  std::lock_guard lock(mutex_);
  if (!result_) return std::nullopt;
  busy_ = false;
  return std::exchange(result_, std::nullopt);
}

void ComputeSlot::loop(std::stop_token stop) {
  while (true) {
    std::pair<std::uint64_t, IncomingMessage> job;
    {
      std::unique_lock lock(mutex_);
      if (!wakeup_.wait(lock, stop, [this] { return job_.has_value(); })) return;
      job = std::move(*job_);
      job_.reset();
    }
    Result result;
    result.connection_epoch = job.first;
    result.delivery_tag = job.second.delivery_tag;
    try {
      result.outputs = handler_(job.second);
    } catch (const std::exception& error) {
      result.error = error.what();
    } catch (...) {
      result.error = "unknown exception";
    }
    {
      std::lock_guard lock(mutex_);
      result_ = std::move(result);
    }
    done_.notify();
  }
}

}  // namespace imgpipe
