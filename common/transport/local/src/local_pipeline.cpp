#include "imgpipe/transport/local/local_pipeline.hpp"

#include <algorithm>

namespace imgpipe {
namespace {

using Stages = std::vector<std::shared_ptr<Stage>>;

// Where `whole` is cut after the stage giving `kind` batches (after the last stage if none does).
Stages::const_iterator cut_after(const StageChain& whole, BatchKind kind) {
  const Stages& stages = whole.stages();
  const auto giving = std::find_if(stages.begin(), stages.end(),
                                   [&](const auto& stage) { return stage->output_kind() == kind; });
  return giving == stages.end() ? giving : giving + 1;
}

StageChain up_to(const StageChain& whole, BatchKind kind) {
  return StageChain(Stages(whole.stages().begin(), cut_after(whole, kind)));
}

StageChain after(const StageChain& whole, BatchKind kind) {
  return StageChain(Stages(cut_after(whole, kind), whole.stages().end()));
}

}  // namespace

LocalPipeline::LocalPipeline(ModelStore store, ComputeOptions compute, DecodeLimits limits,
                             std::shared_ptr<const S3Client> objects)
    : LocalPipeline(make_full_chain({std::move(store), compute, limits, {}, std::move(objects)})) {}

LocalPipeline::LocalPipeline(const StageChain& whole)
    : to_features_(up_to(whole, BatchKind::features)),
      to_pixels_(up_to(whole, BatchKind::pixels)),
      after_pixels_(after(whole, BatchKind::pixels)) {}

LocalPipeline::~LocalPipeline() = default;

std::vector<ResultBatch> LocalPipeline::run(const ImageBatch& batch) {
  return infer(decode(batch));
}

StageChain::Outcome LocalPipeline::decode(const ImageBatch& batch) {
  return to_pixels_.run(batch);
}

std::vector<ResultBatch> LocalPipeline::infer(StageChain::Outcome decoded) {
  std::vector<ResultBatch> answers = std::move(decoded.failures);
  if (!decoded.out) return answers;
  StageChain::Outcome outcome = after_pixels_.run(std::move(*decoded.out));
  for (auto& failure : outcome.failures) answers.push_back(std::move(failure));
  if (outcome.out) answers.push_back(std::get<ResultBatch>(std::move(*outcome.out)));
  return answers;
}

FeatureBatch LocalPipeline::features(const ImageBatch& batch, std::vector<ImageResult>& errors) {
  StageChain::Outcome outcome = to_features_.run(batch);
  for (auto& failure : outcome.failures)
    errors.insert(errors.end(), failure.results.begin(), failure.results.end());
  if (!outcome.out) return FeatureBatch{batch.job, {}};
  return std::get<FeatureBatch>(std::move(*outcome.out));
}

}  // namespace imgpipe
