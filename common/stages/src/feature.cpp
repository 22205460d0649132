#include "imgpipe/stages/feature.hpp"

#include "imgpipe/stages/model_for_batch.hpp"

namespace imgpipe {

FeatureStage::FeatureStage(ModelStore store, ComputeOptions options, ModelLoadObserver on_load,
                           std::size_t loaded_versions)
    : backbones_(
          std::move(store), [options](const ModelConfig& config) { return Backbone::load(config, options); },
          std::move(on_load), loaded_versions) {}

StageOutput FeatureStage::process(const Batch& in) {
  const PixelBatch& batch = batch_taken_by<PixelBatch>(*this, in);
  StageOutput output;
  const auto loaded = model_for_batch(backbones_, batch.job, batch.images, output);
  if (!loaded) return output;
  const auto& model = *loaded;
  // Images of the wrong geometry fail alone; the rest of the batch goes through.
  std::vector<const PixelImage*> fitting;
  const InputSpec& input = model.config->input;
  for (const auto& image : batch.images) {
    if (image.width == input.width && image.height == input.height && image.channels == input.channels) {
      fitting.push_back(&image);
    } else {
      output.errors.push_back({image.image_id, "", 0.0,
                               "pixels are " + std::to_string(image.width) + "x" +
                                   std::to_string(image.height) + "x" + std::to_string(image.channels) +
                                   " but model " + model.config->name + " wants " +
                                   std::to_string(input.width) + "x" + std::to_string(input.height) + "x" +
                                   std::to_string(input.channels)});
    }
  }
  if (fitting.empty()) return output;
  std::vector<std::vector<float>> features;
  try {
    features = model.loaded->extract(fitting);
  } catch (const ModelError& error) {
    for (const auto* image : fitting) output.errors.push_back({image->image_id, "", 0.0, error.what()});
    return output;
  }
  FeatureBatch next{batch.job, {}};
  next.job.model_version = model.config->version;
  for (std::size_t i = 0; i < fitting.size(); ++i)
    next.features.push_back({fitting[i]->image_id, std::move(features[i])});
  output.next = std::move(next);
  return output;
}

}  // namespace imgpipe
