#include "imgpipe/feature.hpp"

#include "imgpipe/codec.hpp"

namespace imgpipe {

FeatureStage::FeatureStage(ModelStore store, ComputeOptions options)
    : backbones_(std::move(store),
                 [options](const ModelConfig& config) { return Backbone::load(config, options); }) {}

StageOutput FeatureStage::process(const Batch& in) {
  const auto* batch = std::get_if<PixelBatch>(&in);
  if (batch == nullptr)
    throw MessageError(std::string("feature expects a pixels batch, got ") + to_string(kind_of(in)));
  StageOutput output;
  auto fail_all = [&](const std::string& reason) {
    for (const auto& image : batch->images) output.errors.push_back({image.image_id, "", 0.0, reason});
    return output;
  };
  ModelCache<Backbone>::Entry model;
  try {
    model = backbones_.get(batch->job.model);
  } catch (const ModelError& error) {
    return fail_all(error.what());
  }
  output.model_version = model.config->version;
  if (!batch->job.model_version.empty() && batch->job.model_version != model.config->version) {
    return fail_all("model " + batch->job.model + " changed on disk between stages (batch has version " +
                    batch->job.model_version + ", this worker has " + model.config->version + ")");
  }
  // Images of the wrong geometry fail alone; the rest of the batch goes through.
  std::vector<const PixelImage*> fitting;
  const InputSpec& input = model.config->input;
  for (const auto& image : batch->images) {
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
  FeatureBatch next{batch->job, {}};
  next.job.model_version = model.config->version;
  for (std::size_t i = 0; i < fitting.size(); ++i)
    next.features.push_back({fitting[i]->image_id, std::move(features[i])});
  output.next = std::move(next);
  return output;
}

}  // namespace imgpipe
