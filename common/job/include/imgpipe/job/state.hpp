// A broker job's progress as a small JSON file, so `imgpipe status --job ID` in another process (or
// another terminal, later) can tell how far the job got:
//   <state-dir>/jobs/<id>.json  {job, model, total, done, failed, duplicates, started, updated, finished,
//                                result_queue, host, pid, error}
// Times are Unix seconds (UTC, millisecond precision); finished is null while the job runs.
// Each write goes to a temporary file that is then renamed over the old one, so a reader never sees half a
// file, whatever moment the publisher dies at.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

#include "imgpipe/job/batching.hpp"
#include "imgpipe/job/results.hpp"

namespace imgpipe {

// --state-dir, else IMGPIPE_STATE_DIR, else $XDG_STATE_HOME/imgpipe, else ~/.local/state/imgpipe.
// `explicit_dir` is the flag (CLI11 already folds the environment variable into it). Empty when there is
// nowhere to put it (no HOME): the caller decides whether that matters.
std::filesystem::path resolve_state_dir(const std::string& explicit_dir);

// Job ids become file names: only letters, digits, '-' and '_' (new_job_id makes hex).
bool is_valid_job_id(const std::string& job_id);

// Now as Unix seconds with millisecond precision, the clock of the state files.
double unix_seconds_now();

struct JobState {
  std::string job;
  std::string model;
  std::size_t total = 0;
  std::size_t done = 0;  // answered, errors included
  std::size_t failed = 0;
  std::size_t duplicates = 0;
  double started = 0;  // Unix seconds
  double updated = 0;
  std::optional<double> finished;
  std::string result_queue;
  std::string host;  // where the publisher runs, so a reader can check whether it still does
  long pid = 0;
  std::string error;  // why the job gave up, when it did

  // "running", "finished", "failed" (gave up; see error), or "abandoned": the publisher on this host is gone
  // without a last word (killed). A publisher on another host cannot be checked and counts as running.
  std::string phase() const;

  // Throws std::runtime_error naming the file when it is missing or unreadable.
  static JobState read(const std::filesystem::path& state_dir, const std::string& job_id);
};

// The state file's JSON form (also the base of `imgpipe status --job --json`).
nlohmann::json to_json(const JobState& state);

// Writes one job's state file. Not thread-safe: the publisher's job loop owns it.
class JobStateFile {
 public:
  // Creates <state_dir>/jobs and writes the first state (done 0). Throws std::runtime_error on failure.
  JobStateFile(const std::filesystem::path& state_dir, JobState initial);

  // Rewrites the file at most once per `interval`: results arrive by the thousand per second.
  void update(const JobResults& results, std::chrono::milliseconds interval = std::chrono::seconds(1));
  // The last write: counts, finished time and, for a job that gave up, why.
  void finish(const JobResults& results, const std::string& error = "");

  const std::filesystem::path& path() const { return path_; }

 private:
  void take(const JobResults& results);
  void write();

  std::filesystem::path path_;
  JobState state_;
  std::chrono::steady_clock::time_point last_write_;
};

}  // namespace imgpipe
