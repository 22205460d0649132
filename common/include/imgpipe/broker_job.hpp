// Broker mode for the publisher: publish the job's batches, collect exactly one result per image.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "imgpipe/broker.hpp"
#include "imgpipe/job.hpp"

namespace imgpipe {

struct BrokerJobSettings {
  JobSettings job;
  ConnectionOptions connection;
  std::chrono::seconds idle_timeout{600};  // give up when no result arrived for this long
  std::string job_id;                      // empty: a new one; the caller may need it before the job starts
  std::function<void(const JobResults&)> on_progress;  // after each result message; may be empty
};

// Returns the job id. Throws BrokerError when the broker cannot be reached or the job stalls.
std::string run_broker_job(const BrokerAddress& address, const std::vector<JobInput>& inputs,
                           const BrokerJobSettings& settings, JobResults& results, const LogFn& log);

}  // namespace imgpipe
