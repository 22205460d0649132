#include "imgpipe/job/cancel.hpp"

#include <chrono>

#include "imgpipe/messages/cancellation.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"

namespace imgpipe {

bool result_queue_exists(const BrokerAddress& address, const BrokerOptions& options,
                         const std::string& job_id) {
  // A passive declare of a missing queue closes the session's channel: the session is used for nothing else.
  try {
    BrokerSession(address, options).message_count(queues::results_for(job_id));
    return true;
  } catch (const BrokerRefused&) {
    return false;
  }
}

void cancel_broker_job(const BrokerAddress& address, const BrokerOptions& options, const std::string& job_id,
                       const std::string& by) {
  BrokerSession session(address, options);
  session.declare_cancellations();  // a broker no worker has used yet would drop the record unrouted
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const CancelRecord record{job_id, std::chrono::duration_cast<std::chrono::milliseconds>(now).count(), by};
  // Confirmed before the queue goes: a publisher must never see its result queue vanish without a record
  // that tells it why.
  session.publish({queues::cancelled, encode_cancel(record), {{headers::job, job_id}}});
  session.delete_queue(queues::results_for(job_id));
}

}  // namespace imgpipe
