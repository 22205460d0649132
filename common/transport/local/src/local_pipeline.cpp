#include "imgpipe/transport/local/local_pipeline.hpp"

namespace imgpipe {
namespace {

// The stages that turn images into features: from the first stage to the one giving features.
StageChain feature_chain(const StageChain& whole) {
  std::vector<std::shared_ptr<Stage>> stages;
  for (const auto& stage : whole.stages()) {
    stages.push_back(stage);
    if (stage->output_kind() == BatchKind::features) break;
  }
  return StageChain(std::move(stages));
}

}  // namespace

LocalPipeline::LocalPipeline(ModelStore store, ComputeOptions compute, DecodeLimits limits)
    : whole_(make_full_chain({std::move(store), compute, limits, {}})), to_features_(feature_chain(whole_)) {}

LocalPipeline::~LocalPipeline() = default;

std::vector<ResultBatch> LocalPipeline::run(const ImageBatch& batch) {
  StageChain::Outcome outcome = whole_.run(batch);
  if (outcome.out) outcome.failures.push_back(std::get<ResultBatch>(std::move(*outcome.out)));
  return std::move(outcome.failures);
}

FeatureBatch LocalPipeline::features(const ImageBatch& batch, std::vector<ImageResult>& errors) {
  StageChain::Outcome outcome = to_features_.run(batch);
  for (auto& failure : outcome.failures)
    errors.insert(errors.end(), failure.results.begin(), failure.results.end());
  if (!outcome.out) return FeatureBatch{batch.job, {}};
  return std::get<FeatureBatch>(std::move(*outcome.out));
}

}  // namespace imgpipe
