#include "imgpipe/stages/classify.hpp"

#include <algorithm>

#include "imgpipe/stages/model_for_batch.hpp"

namespace imgpipe {

ClassifyStage::ClassifyStage(ModelStore store, ModelLoadObserver on_load, std::size_t loaded_versions)
    : classifiers_(std::move(store), LinearClassifier::load, std::move(on_load), loaded_versions) {}

StageOutput ClassifyStage::process(const Batch& in) {
  const FeatureBatch& batch = batch_taken_by<FeatureBatch>(*this, in);
  StageOutput output;
  const auto loaded = model_for_batch(classifiers_, batch.job, batch.features, output);
  if (!loaded) return output;
  const auto& model = *loaded;
  ResultBatch results{batch.job, name(), {}};
  results.job.model_version = model.config->version;
  for (const auto& feature : batch.features) {
    try {
      const auto top = static_cast<std::size_t>(std::max(batch.job.top_k, 1));
      const Prediction prediction = model.loaded->predict(feature.values, top);
      ImageResult result{
          feature.image_id, model.config->classes.at(prediction.class_index), prediction.score, "", {}};
      if (top > 1) {
        for (const auto& [index, score] : prediction.best)
          result.top.push_back({model.config->classes.at(index), score});
      }
      results.results.push_back(std::move(result));
    } catch (const ModelError& error) {
      output.errors.push_back({feature.image_id, "", 0.0, error.what()});
    }
  }
  if (!results.results.empty()) output.next = std::move(results);
  return output;
}

}  // namespace imgpipe
