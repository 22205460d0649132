#include "imgpipe/local_pipeline.hpp"

#include "imgpipe/classifier.hpp"
#include "imgpipe/feature.hpp"

namespace imgpipe {

struct LocalPipeline::Stages {
  Stages(const ModelStore& store, const ComputeOptions& compute, const DecodeLimits& limits)
      : preprocess(store, limits), feature(store, compute), classify(store) {}
  PreprocessStage preprocess;
  FeatureStage feature;
  ClassifyStage classify;
};

LocalPipeline::LocalPipeline(ModelStore store, ComputeOptions compute, DecodeLimits limits)
    : stages_(std::make_unique<Stages>(store, compute, limits)) {}

LocalPipeline::~LocalPipeline() = default;

FeatureBatch LocalPipeline::features(const ImageBatch& batch, std::vector<ImageResult>& errors) {
  StageOutput pixels = stages_->preprocess.process(batch);
  errors.insert(errors.end(), pixels.errors.begin(), pixels.errors.end());
  if (!pixels.next) return FeatureBatch{batch.job, {}};
  StageOutput features = stages_->feature.process(*pixels.next);
  errors.insert(errors.end(), features.errors.begin(), features.errors.end());
  if (!features.next) return FeatureBatch{batch.job, {}};
  return std::get<FeatureBatch>(std::move(*features.next));
}

ResultBatch LocalPipeline::run(const ImageBatch& batch) {
  ResultBatch out{batch.job, "local", {}};
  FeatureBatch features = this->features(batch, out.results);
  if (!features.features.empty()) {
    out.job.model_version = features.job.model_version;
    StageOutput classified = stages_->classify.process(features);
    out.results.insert(out.results.end(), classified.errors.begin(), classified.errors.end());
    if (classified.next) {
      auto& labelled = std::get<ResultBatch>(*classified.next);
      out.job.model_version = labelled.job.model_version;
      out.results.insert(out.results.end(), labelled.results.begin(), labelled.results.end());
    }
  }
  return out;
}

void run_local_job(const std::vector<JobInput>& inputs, const JobSettings& settings, const ModelStore& store,
                   const ComputeOptions& compute, JobResults& results) {
  LocalPipeline pipeline(store, compute);
  Progress progress("local", inputs.size(), settings.show_progress);
  const JobRef job{new_job_id(), "", settings.model, ""};
  auto sink = [&](const ImageResult& result, const std::string& version) {
    results.add(result, version);
    progress.update(results.done(), results.failed());
  };
  for_each_batch(
      inputs, job, settings,
      [&](ImageBatch&& batch) {
        ResultBatch out = pipeline.run(batch);
        for (const auto& result : out.results) sink(result, out.job.model_version);
      },
      sink);
  progress.finish(results.done(), results.failed());
}

}  // namespace imgpipe
