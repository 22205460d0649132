#include "imgpipe/job/local_job.hpp"

#include <optional>
#include <utility>

#include "imgpipe/job/progress.hpp"
#include "imgpipe/transport/local/local_pipeline.hpp"
#include "imgpipe/transport/local/overlapped.hpp"

namespace imgpipe {
namespace {

// What the decoding thread hands over: the inputs that could not be read since the last batch, then the next
// batch decoded (none after the last one). Results stay with the caller's thread, which alone adds them.
struct Decoded {
  std::vector<ImageResult> unreadable;
  std::optional<StageChain::Outcome> batch;
};

// Decoded batches that may wait for the network. One keeps it busy once running; the second lets decoding run
// further ahead while the first batch waits for the model to load. Memory: at most four batches of pixels
// (one in the network, two waiting, one being decoded).
constexpr std::size_t kDecodedAhead = 2;

}  // namespace

void run_local_job(const std::vector<JobInput>& inputs, const JobSettings& settings, const ModelStore& store,
                   const ComputeOptions& compute, JobResults& results) {
  DecodeLimits limits;
  limits.max_file_bytes = settings.max_file_bytes;
  LocalPipeline pipeline(store, compute, limits, settings.objects);
  Progress progress("local", inputs.size(), settings.show_progress);
  const JobRef job{new_job_id(), "", settings.model, "", settings.top_k};
  auto add = [&](const ImageResult& result, const std::string& version) {
    results.add(result, version);
    progress.update(results.done(), results.failed());
  };
  // Reading and decoding the images of batch n+1 on another thread while this one runs the network on batch
  // n: run one after the other, they leave the network idle for the decode of every batch. On a stop signal
  // the reading thread throws JobInterrupted (for_each_batch), rethrown here after the batches before it.
  run_overlapped<Decoded>(
      kDecodedAhead,
      [&](const auto& emit) {
        std::vector<ImageResult> unreadable;
        for_each_batch(
            inputs, job, settings,
            [&](ImageBatch&& batch) {
              StageChain::Outcome pixels = pipeline.decode(batch);
              batch = {};  // its encoded bytes are not kept while emit waits for room
              emit(Decoded{std::exchange(unreadable, {}), std::move(pixels)});
            },
            [&](const ImageResult& result, const std::string&) { unreadable.push_back(result); });
        if (!unreadable.empty()) emit(Decoded{std::move(unreadable), std::nullopt});
      },
      [&](Decoded&& decoded) {
        for (const auto& result : decoded.unreadable) add(result, "");
        if (!decoded.batch) return;
        // As prompt as one thread was: after a stop signal no batch starts its forward pass.
        if (settings.stop != nullptr && *settings.stop) throw JobInterrupted("interrupted between batches");
        for (const ResultBatch& answer : pipeline.infer(std::move(*decoded.batch))) {
          for (const auto& result : answer.results) add(result, answer.job.model_version);
        }
      });
  progress.finish(results.done(), results.failed());
}

}  // namespace imgpipe
