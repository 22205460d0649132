// A job as the user sees it: input files in, one output line per image out. Shared by `imgpipe submit`
// (broker mode) and `imgpipe run` (local mode), so both produce the same lines for the same inputs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "imgpipe/messages.hpp"

namespace imgpipe {

struct JobInput {
  std::string image_id;        // unique within the job; what messages carry instead of the path
  std::filesystem::path path;  // as the user named it
  // The folder the user named, when this file was found by walking it: the file must resolve inside that
  // folder when it is read, so a symlink out of it is refused rather than followed. Empty for a file the
  // user named explicitly (on the command line or in a list), which is taken as named.
  std::filesystem::path confined_to{};
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Files are taken as named; folders are walked recursively for image extensions (.jpg .jpeg .png .bmp
// .webp .tif .tiff .gif, any case), in sorted order, without entering symlinked folders; @list.txt names one
// input per line (relative to the list's folder; blank lines and lines starting with # are skipped). Throws
// UsageError for an unreadable list. GIFs are collected so that each gets its "not supported" line instead
// of vanishing from the results unnoticed.
std::vector<JobInput> collect_inputs(const std::vector<std::string>& arguments);

// Reads one input for publishing. An unreadable or oversized file, a broken symlink, a symlink loop, or a
// file found in a folder that resolves outside it yields the error result instead.
struct ReadOutcome {
  std::optional<EncodedImage> image;
  std::optional<ImageResult> error;
};
ReadOutcome read_input(const JobInput& input, std::size_t max_file_bytes);

// Every image's single result; later copies of an already answered image are counted, not kept.
class JobResults {
 public:
  explicit JobResults(const std::vector<JobInput>& inputs);
  // Returns false when the image was already answered (a redelivery) or is not part of this job.
  bool add(const ImageResult& result, const std::string& model_version);
  std::size_t total() const { return total_; }
  std::size_t done() const { return results_.size(); }
  std::size_t failed() const { return failed_; }
  std::size_t duplicates() const { return duplicates_; }
  std::size_t unknown() const { return unknown_; }
  bool complete() const { return results_.size() == total_; }
  const ImageResult* find(const std::string& image_id) const;
  std::string model_version_of(const std::string& image_id) const;

 private:
  std::size_t total_;
  std::map<std::string, std::pair<ImageResult, std::string>> results_;
  std::map<std::string, bool> expected_;
  std::size_t failed_ = 0;
  std::size_t duplicates_ = 0;
  std::size_t unknown_ = 0;
};

enum class OutputFormat { jsonl, csv };

// Writes one line per input, in input order: image, label, score, model, error.
void write_results(std::ostream& out, OutputFormat format, const std::vector<JobInput>& inputs,
                   const JobResults& results, const std::string& model);

// Progress on stderr: a redrawn bar on a terminal, plain lines (at most every few seconds) otherwise.
class Progress {
 public:
  Progress(std::string what, std::size_t total, bool enabled = true);
  void update(std::size_t done, std::size_t failed);
  void finish(std::size_t done, std::size_t failed);

 private:
  std::string what_;
  std::size_t total_;
  bool enabled_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  std::size_t shown_ = static_cast<std::size_t>(-1);  // the count on the last line drawn
};

// SIGINT/SIGTERM arrived while a job ran: what was collected so far is still written out.
class JobInterrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JobSettings {
  std::string model = "fashion";
  std::size_t batch_size = 32;             // images per message
  std::size_t max_batch_bytes = 8u << 20;  // a message is closed early once its images reach this size
  std::size_t max_file_bytes = 64u << 20;
  bool show_progress = true;
  const std::atomic<bool>* stop = nullptr;  // set by a stop signal; the job then throws JobInterrupted
};

using ResultSink = std::function<void(const ImageResult&, const std::string& model_version)>;

// Reads inputs and groups them into image batches of the job; unreadable files go straight to `sink`.
void for_each_batch(const std::vector<JobInput>& inputs, const JobRef& job, const JobSettings& settings,
                    const std::function<void(ImageBatch&&)>& on_batch, const ResultSink& sink);

std::string new_job_id();

}  // namespace imgpipe
