#include "imgpipe/job/batching.hpp"

#include <iomanip>
#include <random>
#include <sstream>

namespace imgpipe {
namespace {
// What a reference adds to a message, about (its JSON item), for the batch's byte budget.
constexpr std::size_t kReferenceBytes = 256;
}  // namespace

void for_each_batch(const std::vector<JobInput>& inputs, const JobRef& job, const JobSettings& settings,
                    const std::function<void(ImageBatch&&)>& on_batch, const ResultSink& sink) {
  ImageBatch batch{job, {}};
  std::size_t batch_bytes = 0;
  auto flush = [&] {
    if (batch.images.empty()) return;
    on_batch(std::move(batch));
    batch = ImageBatch{job, {}};
    batch_bytes = 0;
  };
  for (const auto& input : inputs) {
    if (settings.stop != nullptr && *settings.stop) throw JobInterrupted("interrupted while reading inputs");
    ReadOutcome outcome = input.object
                              ? read_object_input(input, settings.max_file_bytes, settings.objects.get())
                              : read_input(input, settings.max_file_bytes);
    if (outcome.error) {
      sink(*outcome.error, "");
      continue;
    }
    batch_bytes += outcome.image->object ? kReferenceBytes : outcome.image->bytes.size();
    batch.images.push_back(std::move(*outcome.image));
    if (batch.images.size() >= settings.batch_size || batch_bytes >= settings.max_batch_bytes) flush();
  }
  flush();
}

std::string new_job_id() {
  std::random_device entropy;
  std::ostringstream id;
  id << std::hex << std::setfill('0') << std::setw(8) << entropy() << std::setw(8) << entropy();
  return id.str();
}

}  // namespace imgpipe
