// `imgpipe cancel JOB` on the broker: the cancel record every worker and the job's publisher read, and the
// end of the job's result queue.
#pragma once

#include <chrono>
#include <string>

#include "imgpipe/transport/amqp/broker.hpp"

namespace imgpipe {

// Whether the job's result queue is on the broker: a job that is running, or whose publisher died less than
// the queue's x-expires ago. Throws BrokerError when the broker cannot be asked.
bool result_queue_exists(const BrokerList& address, const BrokerOptions& options,
                         const std::string& job_id);

// Appends a cancel record for `job_id` to the stream imgpipe.cancelled and waits for the broker's confirm.
// From then on the job's publisher stops publishing, takes the results already computed and answers its
// other images with "cancelled", and every worker, including those that start later, acks and drops the
// job's batches unprocessed. Then the job's result queue goes: a running publisher (a consumer of it) deletes
// it once it has taken what was there; after `publisher_grace`, or at once when it has no consumer, this
// deletes it. `by` names who cancelled, for the logs. Throws BrokerError.
void cancel_broker_job(const BrokerList& address, const BrokerOptions& options, const std::string& job_id,
                       const std::string& by,
                       std::chrono::seconds publisher_grace = std::chrono::seconds(10));

}  // namespace imgpipe
