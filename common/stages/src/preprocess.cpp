#include "imgpipe/stages/preprocess.hpp"

#include <opencv2/core.hpp>

#include "imgpipe/stages/model_for_batch.hpp"

namespace imgpipe {

PreprocessStage::PreprocessStage(ModelStore store, DecodeLimits limits, ModelLoadObserver on_load)
    : configs_(std::move(store), keep_config, std::move(on_load)), limits_(limits) {}

StageOutput PreprocessStage::process(const Batch& in) {
  const ImageBatch& batch = batch_taken_by<ImageBatch>(*this, in);
  StageOutput output;
  const auto loaded = model_for_batch(configs_, batch.job, batch.images, output);
  if (!loaded) return output;
  const auto& model = *loaded;
  PixelBatch next{batch.job, {}};
  next.job.model_version = model.config->version;
  for (const auto& image : batch.images) {
    try {
      next.images.push_back(decode_and_fit(image.image_id, image.bytes, model.config->input, limits_));
    } catch (const ImageError& error) {
      output.errors.push_back({image.image_id, "", 0.0, error.what()});
    } catch (const cv::Exception& error) {
      output.errors.push_back(
          {image.image_id, "", 0.0, std::string("image processing failed: ") + error.err});
    }
  }
  if (!next.images.empty()) output.next = std::move(next);
  return output;
}

}  // namespace imgpipe
