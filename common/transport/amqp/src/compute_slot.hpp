// Runs one handler call at a time on its own thread, so the IO thread that owns the connection keeps
// servicing heartbeats and confirms while a long batch computes.
#pragma once

#include "event_fd.hpp"
#include "imgpipe/transport/amqp/broker.hpp"
#include "imgpipe/transport/amqp/queue_worker.hpp"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace imgpipe {

class ComputeSlot {
 public:
  struct Result {
    std::uint64_t connection_epoch = 0;  // results from a dead connection must not be acked on a new one
    std::uint64_t delivery_tag = 0;
    std::vector<OutgoingMessage> outputs;
    std::optional<std::string> error;  // the handler threw this
  };

  // `done` is notified whenever a result becomes ready.
  ComputeSlot(const DeliveryHandler& handler, EventFd& done);
  // Waits for a running handler to return; its result is dropped.
  ~ComputeSlot();
  ComputeSlot(const ComputeSlot&) = delete;
  ComputeSlot& operator=(const ComputeSlot&) = delete;

  // A delivery was submitted and its result not taken yet. IO thread only.
  bool busy() const { return busy_; }
  void submit(std::uint64_t connection_epoch, IncomingMessage message);
  std::optional<Result> take();

 private:
  void loop(std::stop_token stop);

  const DeliveryHandler& handler_;
  EventFd& done_;
  bool busy_ = false;
  std::mutex mutex_;
  std::condition_variable_any wakeup_;
  std::optional<std::pair<std::uint64_t, IncomingMessage>> job_;
  std::optional<Result> result_;
  std::jthread thread_;  // last: starts after the members it uses exist
};

}  // namespace imgpipe
