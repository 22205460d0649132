#include "imgpipe/job/cancel.hpp"

#include <chrono>
#include <optional>
#include <thread>

#include "imgpipe/messages/cancellation.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"

namespace imgpipe {

namespace {

// The result queue's consumers (its publisher), nullopt once the queue is gone. A passive declare of a
// missing queue closes the channel, hence a session of its own each time.
std::optional<std::uint32_t> result_queue_consumers(const BrokerList& address,
                                                    const BrokerOptions& options, const std::string& job_id) {
  try {
    return BrokerSession(address, options).consumer_count(queues::results_for(job_id));
  } catch (const BrokerRefused&) {
    return std::nullopt;
  }
}

}  // namespace

bool result_queue_exists(const BrokerList& address, const BrokerOptions& options,
                         const std::string& job_id) {
  // A passive declare of a missing queue closes the session's channel: the session is used for nothing else.
  try {
    BrokerSession(address, options).message_count(queues::results_for(job_id));
    return true;
  } catch (const BrokerRefused&) {
    return false;
  }
}

void cancel_broker_job(const BrokerList& address, const BrokerOptions& options, const std::string& job_id,
                       const std::string& by, std::chrono::seconds publisher_grace) {
  BrokerSession session(address, options);
  session.declare_cancellations();  // a broker no worker has used yet would drop the record unrouted
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const CancelRecord record{job_id, std::chrono::duration_cast<std::chrono::milliseconds>(now).count(), by};
  // Confirmed before the queue goes: a publisher must never see its result queue vanish without a record
  // that tells it why.
  session.publish({queues::cancelled, encode_cancel(record), {{headers::job, job_id}}});
  // A running publisher takes the results already in its queue, then deletes the queue itself: give it
  // `publisher_grace`, then delete the queue whoever still holds it.
  const auto deadline = std::chrono::steady_clock::now() + publisher_grace;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto consumers = result_queue_consumers(address, options, job_id);
    if (!consumers) return;
    if (*consumers == 0) break;  // no publisher: nobody else will delete it
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  session.delete_queue(queues::results_for(job_id));
}

}  // namespace imgpipe
