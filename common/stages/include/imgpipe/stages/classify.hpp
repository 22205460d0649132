// Classify: feature vectors -> a label and score per image, through the model's linear classifier.
#pragma once

#include "imgpipe/models/linear_classifier.hpp"
#include "imgpipe/models/model_cache.hpp"
#include "imgpipe/pipeline/stage.hpp"

namespace imgpipe {

class ClassifyStage final : public Stage {
 public:
  explicit ClassifyStage(ModelStore store, ModelLoadObserver on_load = {},
                         std::size_t loaded_versions = kDefaultLoadedVersions);
  const char* name() const override { return "classify"; }
  BatchKind input_kind() const override { return BatchKind::features; }
  BatchKind output_kind() const override { return BatchKind::results; }
  StageOutput process(const Batch& in) override;

 private:
  ModelCache<LinearClassifier> classifiers_;
};

}  // namespace imgpipe
