// `imgpipe cancel JOB` on the broker: the cancel record every worker and the job's publisher read, and the
// end of the job's result queue.
#pragma once

#include <string>

#include "imgpipe/transport/amqp/broker.hpp"

namespace imgpipe {

// Whether the job's result queue is on the broker: a job that is running, or whose publisher died less than
// the queue's x-expires ago. Throws BrokerError when the broker cannot be asked.
bool result_queue_exists(const BrokerAddress& address, const BrokerOptions& options,
                         const std::string& job_id);

// Appends a cancel record for `job_id` to the stream imgpipe.cancelled and waits for the broker's confirm,
// then deletes the job's result queue. From then on the job's publisher stops publishing and answers its
// remaining images with "cancelled", and every worker, including those that start later, acks and drops the
// job's batches unprocessed. `by` names who cancelled, for the logs. Throws BrokerError.
void cancel_broker_job(const BrokerAddress& address, const BrokerOptions& options, const std::string& job_id,
                       const std::string& by);

}  // namespace imgpipe
