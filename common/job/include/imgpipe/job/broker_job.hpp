// Broker mode for the publisher: publish the job's batches, collect exactly one result per image.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "imgpipe/job/batching.hpp"
#include "imgpipe/job/in_flight_window.hpp"
#include "imgpipe/job/journal.hpp"
#include "imgpipe/job/results.hpp"
#include "imgpipe/transport/amqp/broker.hpp"

namespace imgpipe {

struct BrokerJobSettings {
  JobSettings job;
  PublisherOptions connection;
  WindowLimits window;                     // how much of the job may be in the broker at once
  std::chrono::seconds idle_timeout{600};  // give up when no result arrived for this long
  std::string job_id;                      // empty: a new one; the caller may need it before the job starts
  std::function<void(const JobResults&)> on_progress;  // after each result message; may be empty
  // Where confirmed publishes and results are recorded for `imgpipe submit --resume`; may be null.
  JobJournal* journal = nullptr;
  // Publishes are confirmed and journaled in groups of this many batches.
  std::size_t journal_group = 8;
  // Called after each batch is published, before the next is read; may be empty. (The submit command's hidden
  // test flag pauses here, so a test can kill the publisher mid-submit.)
  std::function<void()> after_publish;
  // Called once when the job turns out to be cancelled (`imgpipe cancel`); may be empty.
  std::function<void()> on_cancelled;
};

// Publishes `inputs` as the job's image batches, no more at once than the window admits, and collects results
// until `results` (which may hold more images than `inputs`, and answers already, when a job is resumed) is
// complete. A dead letter of the job (dead_letters.hpp) answers each image it carried with an error. A job
// cancelled by `imgpipe cancel` publishes no more and answers every image still without a result with the
// error "cancelled" (the results that arrived before stay). Returns the job id. Throws BrokerError when the
// broker cannot be reached or the job stalls.
std::string run_broker_job(const BrokerList& address, const std::vector<JobInput>& inputs,
                           const BrokerJobSettings& settings, JobResults& results, const LogFn& log);

}  // namespace imgpipe
