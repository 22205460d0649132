// What `imgpipe submit --resume JOB` needs to finish a job whose publisher died, kept beside the job's state
// file (job_state.hpp) in <state-dir>/jobs/:
//   <id>.inputs    every input of the job, one line each (input_file.hpp), written and synced first.
//   <id>.job.json  the job as submitted: model, batch settings, working folder, how many inputs.
//                  Written atomically before anything is published.
//   <id>.journal   JSON Lines, appended and fsync'ed:
//                    {"published": ["000001", ...]}   images whose batch the broker confirmed
//                    {"results": [{"id", "label", "score", "error", "version"}, ...]}
//                  Results are journaled before their message is acked, so a result the broker forgot
//                  (acked) is never one the journal lacks. A torn last line (a crash mid-write) is ignored.
// Both go away when the job finishes; the state file stays.
#pragma once

#include <cstddef>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "imgpipe/job/batching.hpp"

namespace imgpipe {

struct JobRecord {
  std::string job_id;
  JobSettings settings;  // model and batch sizes; stop and progress are the running process's own
  std::filesystem::path working_dir;  // relative input paths are read from here on resume
  std::size_t input_count = 0;        // lines of the job's inputs file (job_inputs_file)
};

std::filesystem::path job_record_file(const std::filesystem::path& state_dir, const std::string& job_id);
std::filesystem::path job_inputs_file(const std::filesystem::path& state_dir, const std::string& job_id);
std::filesystem::path job_journal_file(const std::filesystem::path& state_dir, const std::string& job_id);

// Throws std::runtime_error naming the file.
void write_job_record(const std::filesystem::path& state_dir, const JobRecord& record);
JobRecord read_job_record(const std::filesystem::path& state_dir, const std::string& job_id);

using JournaledResult = std::pair<ImageResult, std::string>;  // result, model version

struct JournalReplay {
  std::set<std::string> published;
  std::vector<JournaledResult> results;
};

// Appends to <id>.journal; every call is on disk (fdatasync) when it returns. Not thread-safe.
class JobJournal {
 public:
  JobJournal(const std::filesystem::path& state_dir, const std::string& job_id);
  ~JobJournal();
  JobJournal(const JobJournal&) = delete;
  JobJournal& operator=(const JobJournal&) = delete;

  void published(const std::vector<std::string>& image_ids);
  void results(const std::vector<JournaledResult>& results);

  // Everything journaled so far; a missing file is an empty journal.
  static JournalReplay replay(const std::filesystem::path& state_dir, const std::string& job_id);

 private:
  void append(const std::string& line);
  std::filesystem::path path_;
  int fd_ = -1;
};

// Removes the record, the inputs file and the journal of a finished job (best effort).
void remove_job_record(const std::filesystem::path& state_dir, const std::string& job_id);

}  // namespace imgpipe
