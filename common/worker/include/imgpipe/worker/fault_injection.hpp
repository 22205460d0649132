// Faults the fault-tolerance tests (tests/fault, tests/e2e) make a worker commit on purpose, at moments no
// signal from outside can hit. Kept apart from the worker's configuration: a deployment never sets them, and
// they reach the transport only through its ordinary hooks (a handler wrapper, WorkerOptions::before_ack).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "imgpipe/ops/logging.hpp"
#include "imgpipe/transport/amqp/queue_worker.hpp"

namespace imgpipe {

struct FaultInjection {
  // Kill the process (SIGKILL) once the outputs of its Nth delivery that had outputs are all confirmed by the
  // broker and before that delivery is acked: the broker redelivers an input whose outputs already exist,
  // which is the case that makes duplicates downstream. 0 = never.
  std::uint64_t crash_before_ack = 0;
  // Sleep this long in the compute thread before each handler call: a batch slower than the heartbeat
  // interval, without needing a big model. 0 = never.
  std::chrono::milliseconds handler_delay{0};
  // A delivery whose body contains this text makes the handler throw, as a stage bug would, so a test can
  // follow a poison message through the delivery limit to its error lines. Empty = never.
  std::string fail_marker;

  bool any() const { return crash_before_ack != 0 || handler_delay.count() != 0 || !fail_marker.empty(); }
};

// Wraps `handler` and sets `options.before_ack` so the worker commits `faults`; logs a warning that says so.
void inject_faults(const FaultInjection& faults, DeliveryHandler& handler, WorkerOptions& options,
                   const Logger& log);

}  // namespace imgpipe
