// Dead letters of a job, as its publisher sees them. The broker (delivery limit) and the workers
// (undecodable messages) dead-letter through imgpipe.dlx; imgpipe.dead keeps every one for the operator, and
// imgpipe.dead.jobs passes a copy to the result queue of the job named by its x-imgpipe-job header. There
// the publisher turns it into one error line per image it carried.
#pragma once

#include <string>
#include <vector>

#include "imgpipe/transport/amqp/broker.hpp"

namespace imgpipe {

// True for a message that was dead-lettered (by the broker or a worker) rather than sent as a result.
bool is_dead_letter(const IncomingMessage& message);

struct DeadLetter {
  std::string source_queue;            // the stage queue it was taken from
  std::vector<std::string> image_ids;  // the images it carried; empty when its body names none readably
  std::string reason;                  // "dead-lettered from imgpipe.images (preprocess) after 6 ..."
};

// Reads a dead letter of job `job_id`. `delivery_limit` is the stage queues' x-delivery-limit, which the
// publisher declares too (a different one would be refused), so it is the one that applied.
// Image ids are taken only from a body whose header names this job.
DeadLetter read_dead_letter(const IncomingMessage& message, const std::string& job_id, int delivery_limit);

}  // namespace imgpipe
