#include "imgpipe/worker/fault_injection.hpp"

#include <signal.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace imgpipe {

void inject_faults(const FaultInjection& faults, DeliveryHandler& handler, WorkerOptions& options,
                   const Logger& log) {
  if (!faults.any()) return;
  log.warn("fault injection is on (crash before ack of delivery " + std::to_string(faults.crash_before_ack) +
           ", handler delay " + std::to_string(faults.handler_delay.count()) + " ms, fail marker \"" +
           faults.fail_marker + "\"): for tests only");
  if (!faults.fail_marker.empty()) {
    // The QueueWorker treats this like any stage bug: reject with requeue, until the delivery limit
    // dead-letters the message.
    handler = [inner = std::move(handler), marker = faults.fail_marker](const IncomingMessage& message) {
      if (std::search(message.body.begin(), message.body.end(), marker.begin(), marker.end()) !=
          message.body.end()) {
        throw std::runtime_error("test hook: the message holds the marker \"" + marker + "\"");
      }
      return inner(message);
    };
  }
  if (faults.handler_delay.count() > 0) {
    // In the compute thread, like a slow model: the IO thread keeps the connection serviced meanwhile.
    handler = [inner = std::move(handler), delay = faults.handler_delay](const IncomingMessage& message) {
      std::this_thread::sleep_for(delay);
      return inner(message);
    };
  }
  if (faults.crash_before_ack != 0) {
    options.before_ack = [crash_at = faults.crash_before_ack, &log](std::uint64_t confirmed) {
      if (confirmed != crash_at) return;
      log.warn("fault injection: killing this process after the outputs of delivery " +
               std::to_string(crash_at) + " were confirmed, before acking it");
      ::raise(SIGKILL);
    };
  }
}

}  // namespace imgpipe
