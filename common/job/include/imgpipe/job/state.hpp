// A broker job's progress as a small JSON file, so `imgpipe status --job ID` in another process (or
// another terminal, later) can tell how far the job got:
//   <state-dir>/jobs/<id>.json  {job, model, total, done, failed, duplicates, started, updated, finished,
//                                result_queue, host, pid, error, cancelled, batch_size, recent}
// Times are Unix seconds (UTC, millisecond precision); finished is null while the job runs, cancelled
// null unless `imgpipe cancel` cancelled the job; recent is [[time, done], ...] over the last minute, for a
// rolling rate.
// Each write goes to a temporary file that is then renamed over the old one, so a reader never sees half a
// file, whatever moment the publisher dies at.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

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
  std::string error;                // why the job gave up, when it did
  std::optional<double> cancelled;  // when `imgpipe cancel` cancelled it (that command, or the publisher)
  std::size_t batch_size = 0;       // images per message; 0 = not recorded (older state files)
  struct Sample {
    double time = 0;  // Unix seconds
    std::size_t done = 0;
  };
  std::vector<Sample> recent;  // oldest first, one per write, the last minute's

  // "cancelled", "running", "finished", "failed" (gave up; see error), or "abandoned": the publisher on this
  // host is gone without a last word (killed). A publisher on another host cannot be checked and counts as
  // running.
  std::string phase() const;

  // Throws std::runtime_error naming the file when it is missing or unreadable.
  static JobState read(const std::filesystem::path& state_dir, const std::string& job_id);
};

// The state file's JSON form (also the base of `imgpipe status --job --json`).
nlohmann::json to_json(const JobState& state);

// Images per second over the samples of the last `window` seconds before the newest one: what the job does
// now, not what it did on average (a job slows down when another starts, speeds up when workers are added).
// When results come more rarely than that, the two newest samples. nullopt with fewer than two samples or
// under a second between them.
std::optional<double> rolling_rate(const std::vector<JobState::Sample>& samples, double window = 30);

// Seconds until a running job is done at its rolling rate (its average rate when the state file has no
// samples), counted from `now`; nullopt when it is not running or the rate is unknown or 0.
std::optional<double> eta_seconds(const JobState& state, double now);

// Records in a job's state file that `imgpipe cancel` cancelled it (from any process, atomically); false
// when there is no state file for it in `state_dir`.
bool mark_job_cancelled(const std::filesystem::path& state_dir, const std::string& job_id);

// Writes one job's state file. Not thread-safe: the publisher's job loop owns it.
class JobStateFile {
 public:
  // Creates <state_dir>/jobs and writes the first state (done 0). Throws std::runtime_error on failure.
  JobStateFile(const std::filesystem::path& state_dir, JobState initial);

  // Rewrites the file at most once per `interval`: results arrive by the thousand per second.
  void update(const JobResults& results, std::chrono::milliseconds interval = std::chrono::seconds(1));
  // The last write: counts, finished time and, for a job that gave up, why.
  void finish(const JobResults& results, const std::string& error = "");
  // The job was cancelled: the next write says so.
  void mark_cancelled();

  const std::filesystem::path& path() const { return path_; }

 private:
  void take(const JobResults& results);
  void write();

  std::filesystem::path path_;
  JobState state_;
  std::chrono::steady_clock::time_point last_write_;
};

}  // namespace imgpipe
