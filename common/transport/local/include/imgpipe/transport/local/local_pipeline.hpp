// Local mode: the whole stage chain in this process, no broker. The same stage objects and the same chain
// runner as the workers (pipeline/chain.hpp); batches are handed from stage to stage in memory.
#pragma once

#include <memory>
#include <vector>

#include "imgpipe/stages/stage_factory.hpp"

namespace imgpipe {

class LocalPipeline {
 public:
  // `objects`: where images that travel as object references are fetched from (s3:// inputs).
  LocalPipeline(ModelStore store, ComputeOptions compute, DecodeLimits limits = {},
                std::shared_ptr<const S3Client> objects = {});
  ~LocalPipeline();
  // Every image of the batch gets exactly one result: a label or the error of the stage that failed it.
  // One result batch per stage that answered, each naming the model version that stage used, exactly as
  // the workers send them in broker mode. The same as infer(decode(batch)).
  std::vector<ResultBatch> run(const ImageBatch& batch);

  // run() in two halves, the stages up to the one giving pixels and the rest. They share no stage object, so
  // one thread may decode a batch while another runs infer on the batch before it (run_local_job); each
  // half on its own is for one thread at a time.
  // decode: the images that failed decoding in `failures`, the pixels of the rest in `out`.
  StageChain::Outcome decode(const ImageBatch& batch);
  // infer: decode's failures, then the results of the later stages for its pixels.
  std::vector<ResultBatch> infer(StageChain::Outcome decoded);

  // The stages up to feature only (for training): features of the images that made it, errors for the rest.
  // Synchronous: training reads its images once, so there is little to overlap.
  FeatureBatch features(const ImageBatch& batch, std::vector<ImageResult>& errors);

 private:
  // The chains below share the stage objects of `whole`: one object per stage, however many chains hold it.
  explicit LocalPipeline(const StageChain& whole);
  StageChain to_features_;
  StageChain to_pixels_;
  StageChain after_pixels_;
};

}  // namespace imgpipe
