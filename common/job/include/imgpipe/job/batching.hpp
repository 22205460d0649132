// How a job's inputs become image batches: read in order, grouped by count and bytes, unreadable files
// answered at once. Shared by `imgpipe submit` (broker mode) and `imgpipe run` (local mode), so both produce
// the same lines for the same inputs.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "imgpipe/job/inputs.hpp"

namespace imgpipe {

// SIGINT/SIGTERM arrived while a job ran: what was collected so far is still written out.
class JobInterrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JobSettings {
  std::string model = "photos";
  std::size_t batch_size = 32;             // images per message
  std::size_t max_batch_bytes = 8u << 20;  // a message is closed early once its images reach this size
  std::size_t max_file_bytes = 64u << 20;
  int top_k = 1;  // how many of the best labels each result lists
  bool show_progress = true;
  const std::atomic<bool>* stop = nullptr;  // set by a stop signal; the job then throws JobInterrupted
  // The object store of s3:// inputs (asked for the ETag of objects named alone; in local mode it also
  // fetches them). Null when the job has none.
  std::shared_ptr<const S3Client> objects{};
};

using ResultSink = std::function<void(const ImageResult&, const std::string& model_version)>;

// Reads inputs in order and groups them into image batches of the job, one batch per call; unreadable files
// go straight to `sink` on the way. Keeps a reference to `inputs`, which must outlive it.
class BatchReader {
 public:
  BatchReader(InputSource& inputs, JobRef job, const JobSettings& settings, ResultSink sink);
  // The next batch, or nullopt once every input was read. Throws JobInterrupted on a stop signal.
  std::optional<ImageBatch> next();

 private:
  InputSource& inputs_;
  JobRef job_;
  JobSettings settings_;
  ResultSink sink_;
};

// Reads inputs and groups them into image batches of the job; unreadable files go straight to `sink`.
// Objects travel as references (read_object_input): a batch of them is small whatever their size.
void for_each_batch(const std::vector<JobInput>& inputs, const JobRef& job, const JobSettings& settings,
                    const std::function<void(ImageBatch&&)>& on_batch, const ResultSink& sink);

std::string new_job_id();

}  // namespace imgpipe
