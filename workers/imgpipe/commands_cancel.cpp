// `imgpipe cancel JOB`: the broker learns first (the publisher and the workers act on the record there),
// then this host's state file, so `imgpipe status --job` says "cancelled" even when the publisher is gone.
#include <unistd.h>

#include <array>
#include <iostream>

#include "commands.hpp"
#include "imgpipe/job/cancel.hpp"
#include "imgpipe/job/state.hpp"
#include "imgpipe/ops/logging.hpp"

namespace imgpipe {
namespace {

std::string issuer() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return "imgpipe cancel on " + std::string(host.data()) + " (pid " + std::to_string(::getpid()) + ")";
}

}  // namespace

int cancel_command(const ToolOptions& tool, const CancelOptions& options) {
  Logger log("imgpipe");
  const std::string& job_id = options.job;
  if (!is_valid_job_id(job_id)) {
    log.error("'" + job_id + "' is not a job id (letters, digits, '-' and '_' only)");
    return exit_code::usage;
  }
  BrokerList address;
  try {
    address = BrokerList::parse(tool.broker);
  } catch (const std::invalid_argument& error) {
    log.error(std::string("bad broker URL: ") + error.what());
    return exit_code::usage;
  }
  const auto dir = resolve_state_dir(options.state_dir);
  std::optional<JobState> state;
  if (!dir.empty()) {
    try {
      state = JobState::read(dir, job_id);
    } catch (const std::exception&) {
      // Submitted on another host or with another state folder: the broker decides whether it exists.
    }
  }
  if (state && (state->phase() == "finished" || state->phase() == "failed")) {
    log.error("job " + job_id + " already " + state->phase() + " (" + std::to_string(state->done) + "/" +
              std::to_string(state->total) + " images answered): nothing to cancel");
    return exit_code::usage;
  }
  try {
    BrokerOptions broker_options;
    broker_options.client_name = "imgpipe-cancel";
    const bool queued = result_queue_exists(address, broker_options, job_id);
    if (!queued && !state) {
      log.error("no job " + job_id + ": the broker has no result queue " + queues::results_for(job_id) +
                " (the job finished, expired, or never existed) and " +
                (dir.empty() ? std::string("there is no state folder")
                             : "there is no state for it in " + dir.string()));
      return exit_code::usage;
    }
    cancel_broker_job(address, broker_options, job_id, issuer());
  } catch (const std::exception& error) {
    log.error("job " + job_id + " could not be cancelled: " + error.what());
    return exit_code::failed;
  }
  if (state) {
    try {
      mark_job_cancelled(dir, job_id);
    } catch (const std::exception& error) {
      log.warn(std::string("the job's state file does not say it was cancelled: ") + error.what());
    }
  }
  std::cerr << "job " << job_id
            << " cancelled: its publisher stops publishing and answers its remaining images "
            << "with \"cancelled\", workers drop its queued batches unprocessed, and its result queue "
            << queues::results_for(job_id) << " is deleted\n";
  return exit_code::ok;
}

}  // namespace imgpipe
