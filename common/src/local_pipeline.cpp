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

std::vector<ResultBatch> LocalPipeline::run(const ImageBatch& batch) {
  std::vector<ResultBatch> answers;
  Batch current = batch;
  for (Stage* stage :
       std::initializer_list<Stage*>{&stages_->preprocess, &stages_->feature, &stages_->classify}) {
    StageOutput output = stage->process(current);
    if (!output.errors.empty()) {
      JobRef job = batch.job;
      job.model_version = output.model_version;
      answers.push_back({job, stage->name(), std::move(output.errors)});
    }
    if (!output.next) break;
    current = std::move(*output.next);
  }
  if (auto* labelled = std::get_if<ResultBatch>(&current)) answers.push_back(std::move(*labelled));
  return answers;
}

FeatureBatch LocalPipeline::features(const ImageBatch& batch, std::vector<ImageResult>& errors) {
  StageOutput pixels = stages_->preprocess.process(batch);
  errors.insert(errors.end(), pixels.errors.begin(), pixels.errors.end());
  if (!pixels.next) return FeatureBatch{batch.job, {}};
  StageOutput features = stages_->feature.process(*pixels.next);
  errors.insert(errors.end(), features.errors.begin(), features.errors.end());
  if (!features.next) return FeatureBatch{batch.job, {}};
  return std::get<FeatureBatch>(std::move(*features.next));
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
        for (const ResultBatch& answer : pipeline.run(batch)) {
          for (const auto& result : answer.results) sink(result, answer.job.model_version);
        }
      },
      sink);
  progress.finish(results.done(), results.failed());
}

}  // namespace imgpipe
