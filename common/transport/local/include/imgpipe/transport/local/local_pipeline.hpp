// Local mode: the whole stage chain in this process, no broker. The same stage objects and the same chain
// runner as the workers (pipeline/chain.hpp); batches are handed from stage to stage in memory.
#pragma once

#include <memory>
#include <vector>

#include "imgpipe/stages/stage_factory.hpp"

namespace imgpipe {

class LocalPipeline {
 public:
  LocalPipeline(ModelStore store, ComputeOptions compute, DecodeLimits limits = {});
  ~LocalPipeline();
  // Every image of the batch gets exactly one result: a label or the error of the stage that failed it.
  // One result batch per stage that answered, each naming the model version that stage used, exactly as
  // the workers send them in broker mode.
  std::vector<ResultBatch> run(const ImageBatch& batch);
  // The stages up to feature only (for training): features of the images that made it, errors for the rest.
  FeatureBatch features(const ImageBatch& batch, std::vector<ImageResult>& errors);

 private:
  StageChain whole_;
  StageChain to_features_;
};

}  // namespace imgpipe
