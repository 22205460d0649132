// The fault-injection harness: real worker processes that a scenario kills and restarts, `imgpipe submit`
// as a real child process, and the property every scenario must keep: for every submitted image exactly one
// output line, nothing lost, every stage queue empty at the end, worker memory bounded.
//
// Each scenario prints one "FAULT-SUMMARY scenario=... runs=... images=... results=... duplicates=...
// lost=..." line on stdout. Knobs (environment, all optional):
//   IMGPIPE_FAULT_REPEAT                 runs of each scenario (1)
//   IMGPIPE_FAULT_KILLS_PER_STAGE        scenario 1: kill -9 per stage in a run (20)
//   IMGPIPE_FAULT_IMAGES_PER_CLASS       scenario 1: Fashion-MNIST images per class in a job (300: 3009
//   images) IMGPIPE_FAULT_SEED                   scenario 1: replay a kill schedule (the seed each run
//   prints) IMGPIPE_FAULT_CRASH_IMAGES_PER_CLASS scenario 2: images per class (60)
//   IMGPIPE_FAULT_OUTAGE_IMAGES_PER_CLASS scenario 4: images per class (100)
//   IMGPIPE_FAULT_OUTAGE_SECONDS         scenario 9: how long the broker is away (20; 60 for the full minute)
//   IMGPIPE_FAULT_MAX_RSS_MB             bound on any worker's peak RSS (1024)
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "e2e_support.hpp"

namespace imgpipe::test::fault {

inline const std::vector<std::string> kStages = {"preprocess", "feature", "classify"};

// An integer from the environment (IMGPIPE_FAULT_REPEAT, ...), or `fallback` when unset or empty.
int env_int(const char* name, int fallback);
// How many times each scenario runs: IMGPIPE_FAULT_REPEAT, default 1.
int repeat_count();

// The stage queues recreated with the scenario's delivery limit, and deleted again when the scenario ends,
// so the other suites on the same broker can declare them with theirs. Creating them here, long before any
// broker restart, also gives each quorum queue time to settle (see broker_outage_test.cpp).
class StageQueues {
 public:
  // keep_existing: the workers declared them already (deleting them would cancel their consumers).
  enum class Declare { recreate, keep_existing };
  explicit StageQueues(int delivery_limit, Declare declare = Declare::recreate);
  ~StageQueues();
  StageQueues(const StageQueues&) = delete;
  StageQueues& operator=(const StageQueues&) = delete;
  int delivery_limit() const { return delivery_limit_; }
  // Ready messages in each of imgpipe.images/pixels/features (unacked ones come back once workers stop).
  std::map<std::string, std::uint32_t> ready() const;
  std::uint32_t dead_letters() const;

 private:
  int delivery_limit_;
};

// Starts the broker again (IMGPIPE_TEST_BROKER_CTL start, a no-op when it runs) when a scenario that took
// it down ends, however it ends, so the specs after it find their broker.
class BrokerBack {
 public:
  BrokerBack() = default;
  ~BrokerBack();
  BrokerBack(const BrokerBack&) = delete;
  BrokerBack& operator=(const BrokerBack&) = delete;
};

// Resident memory of a process (VmRSS of /proc/PID/status), in KiB; nullopt once it is gone.
std::optional<std::uint64_t> rss_kib(pid_t pid);
// CPU time (user + system) a process used so far, from /proc/PID/stat, in seconds.
std::optional<double> cpu_seconds(pid_t pid);

// RSS of one role, sampled only while a worker consumes its queue (a worker that is still starting has not
// loaded its libraries and model yet). Growth is measured within one incarnation: a restart starts afresh.
struct RssTrack {
  std::uint64_t first_kib = 0;  // the first warm sample of the first incarnation
  std::uint64_t warm_kib = 0;   // the first warm sample of the current incarnation
  std::uint64_t last_kib = 0;   // the latest sample (current incarnation)
  std::uint64_t peak_kib = 0;   // over all incarnations
  int incarnation = 0;          // of warm_kib
};

// One replica per stage, each restartable; every incarnation logs to its own file.
class Workers {
 public:
  // `flags` go to every worker, `role_flags` to that role only.
  explicit Workers(const std::vector<std::string>& flags,
                   const std::map<std::string, std::vector<std::string>>& role_flags = {});
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void start(const std::string& role);
  void start_all();
  ChildProcess& process(const std::string& role);
  void kill_hard(const std::string& role);  // kill -9
  // True once the current incarnation logged that it consumes its queue.
  bool consuming(const std::string& role);
  // Restarts any worker that died (the fault hook kills itself); returns how many were restarted.
  int restart_dead();
  int restarts(const std::string& role) const;
  // Every incarnation's log, oldest first.
  std::string logs(const std::string& role) const;
  // Samples RSS of every running worker; `warm` marks the samples that count as the warm baseline.
  void sample_rss(bool warm);
  // Inside a polling loop: a warm sample at most once a second.
  void sample_rss_if_due();
  const RssTrack& rss(const std::string& role) { return rss_[role]; }
  // SIGTERM to all, wait; returns role -> exit status.
  std::map<std::string, int> stop_all();

 private:
  std::chrono::steady_clock::time_point next_sample_{};
  std::filesystem::path log_path(const std::string& role, int incarnation) const;
  TempDir logs_{"imgpipe-fault-logs"};
  std::vector<std::string> flags_;
  std::map<std::string, std::vector<std::string>> role_flags_;
  std::map<std::string, std::unique_ptr<ChildProcess>> processes_;
  std::map<std::string, int> incarnations_;
  std::map<std::string, RssTrack> rss_;
};

// Waits until the stage queues stayed empty for a moment (late duplicates drained), then stops the workers
// with SIGTERM; returns role -> exit status (0 is a clean stop).
std::map<std::string, int> settle_then_stop(Workers& workers, const StageQueues& queues);

// The worker flags of a scenario: broker, models, one compute thread, metrics off, the delivery limit.
std::vector<std::string> worker_flags(int delivery_limit, const std::vector<std::string>& extra = {});

// What one job ended with, measured from its output file and its state file.
struct JobOutcome {
  int exit_code = -1;
  std::string job_id;
  std::size_t images = 0;      // submitted
  std::size_t lines = 0;       // output lines
  std::size_t results = 0;     // distinct images with a line that is a result (label or a stage's error)
  std::size_t lost = 0;        // images without a result ("no result (the job did not finish)" or no line)
  std::size_t duplicates = 0;  // raw duplicate results the publisher dropped (its state file)
  std::string log;             // the publisher's stderr
};

// `imgpipe submit` of a folder, as a child process, so a scenario can break things while it runs.
class Job {
 public:
  Job(const InputFolder& inputs, int delivery_limit, const std::vector<std::string>& extra_flags = {});
  bool running() { return process_->running(); }
  // Images done so far according to the state file (0 until the publisher wrote it).
  std::size_t done() const;
  // Waits for the job to end (SIGKILL after `timeout`) and measures it against the inputs.
  JobOutcome finish(std::chrono::seconds timeout = std::chrono::seconds(600));

 private:
  std::string job_id() const;
  const InputFolder& inputs_;
  TempDir dir_{"imgpipe-fault-job"};
  std::unique_ptr<ChildProcess> process_;
};

// THE PROPERTY for one job: exit 3 (the folder's broken files fail, each with its line), one line per
// image, the right error for every broken file, a label for every other image, nothing lost.
void check_job(const InputFolder& inputs, const JobOutcome& outcome);
// THE PROPERTY at the end of a run: stage queues empty, nothing dead-lettered, RSS bounded.
void check_quiet_queues(const StageQueues& queues, std::uint32_t dead_letters_before);
// Peak RSS of every role under IMGPIPE_FAULT_MAX_RSS_MB (default 1024); with `long_lived`, also the last
// sample no more than 25% + 64 MiB over the warm one (memory does not grow with the work done).
void check_rss(Workers& workers, bool long_lived);

// The totals of a scenario over its runs, printed as one line for the reliability table.
struct Tally {
  explicit Tally(std::string name) : scenario(std::move(name)) {}
  std::string scenario;
  int runs = 0;
  std::size_t jobs = 0;
  std::size_t images = 0;
  std::size_t results = 0;
  std::size_t duplicates = 0;
  std::size_t lost = 0;
  std::map<std::string, int> kills;  // per stage
  std::string note;
  void add(const JobOutcome& outcome);
  void print() const;  // FAULT-SUMMARY scenario=... runs=... images=... results=... duplicates=... lost=...
};

// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
template <typename Condition>
bool wait_until(Condition condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace imgpipe::test::fault
