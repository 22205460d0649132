#include "imgpipe/job/batching.hpp"

#include <iomanip>
#include <random>
#include <sstream>
#include <utility>

namespace imgpipe {
namespace {
// What a reference adds to a message, about (its JSON item), for the batch's byte budget.
constexpr std::size_t kReferenceBytes = 256;
}  // namespace

BatchReader::BatchReader(InputSource& inputs, JobRef job, const JobSettings& settings, ResultSink sink)
    : inputs_(inputs), job_(std::move(job)), settings_(settings), sink_(std::move(sink)) {}

std::optional<ImageBatch> BatchReader::next() {
  ImageBatch batch{job_, {}};
  std::size_t batch_bytes = 0;
  while (true) {
    if (settings_.stop != nullptr && *settings_.stop)
      throw JobInterrupted("interrupted while reading inputs");
    const std::optional<JobInput> next_input = inputs_.next();
    if (!next_input) break;
    const JobInput& input = *next_input;
    ReadOutcome outcome = input.object
                              ? read_object_input(input, settings_.max_file_bytes, settings_.objects.get())
                              : read_input(input, settings_.max_file_bytes);
    if (outcome.error) {
      sink_(*outcome.error, "");
      continue;
    }
    batch_bytes += outcome.image->object ? kReferenceBytes : outcome.image->bytes.size();
    batch.images.push_back(std::move(*outcome.image));
    if (batch.images.size() >= settings_.batch_size || batch_bytes >= settings_.max_batch_bytes) break;
  }
  if (batch.images.empty()) return std::nullopt;
  return batch;
}

void for_each_batch(const std::vector<JobInput>& inputs, const JobRef& job, const JobSettings& settings,
                    const std::function<void(ImageBatch&&)>& on_batch, const ResultSink& sink) {
  VectorInputSource source(inputs);
  BatchReader reader(source, job, settings, sink);
  while (auto batch = reader.next()) on_batch(std::move(*batch));
}

std::string new_job_id() {
  std::random_device entropy;
  std::ostringstream id;
  id << std::hex << std::setfill('0') << std::setw(8) << entropy() << std::setw(8) << entropy();
  return id.str();
}

}  // namespace imgpipe
