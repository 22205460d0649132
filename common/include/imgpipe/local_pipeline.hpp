// Local mode: every stage in this process, no broker. Same stage objects as the workers use.
#pragma once

#include <memory>
#include <vector>

#include "imgpipe/backbone.hpp"
#include "imgpipe/job.hpp"
#include "imgpipe/model_store.hpp"
#include "imgpipe/preprocess.hpp"

namespace imgpipe {

class LocalPipeline {
 public:
  LocalPipeline(ModelStore store, ComputeOptions compute, DecodeLimits limits = {});
  ~LocalPipeline();
  // Every image of the batch gets exactly one result: a label or the error of the stage that failed it.
  // One result batch per stage that answered, each naming the model version that stage used, exactly as
  // the workers send them in broker mode.
  std::vector<ResultBatch> run(const ImageBatch& batch);
  // Preprocess and feature only (for training): features of the images that made it, errors for the rest.
  FeatureBatch features(const ImageBatch& batch, std::vector<ImageResult>& errors);

 private:
  struct Stages;
  std::unique_ptr<Stages> stages_;
};

// Runs a whole job locally and fills `results`.
void run_local_job(const std::vector<JobInput>& inputs, const JobSettings& settings, const ModelStore& store,
                   const ComputeOptions& compute, JobResults& results);

}  // namespace imgpipe
