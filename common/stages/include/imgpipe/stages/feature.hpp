// Feature extraction: model-geometry pixels -> feature vectors, through the model's TorchScript backbone.
#pragma once

#include "imgpipe/models/backbone.hpp"
#include "imgpipe/models/model_cache.hpp"
#include "imgpipe/pipeline/stage.hpp"

namespace imgpipe {

class FeatureStage final : public Stage {
 public:
  FeatureStage(ModelStore store, ComputeOptions options, ModelLoadObserver on_load = {},
               std::size_t loaded_versions = kDefaultLoadedVersions);
  const char* name() const override { return "feature"; }
  BatchKind input_kind() const override { return BatchKind::pixels; }
  BatchKind output_kind() const override { return BatchKind::features; }
  StageOutput process(const Batch& in) override;

 private:
  ModelCache<Backbone> backbones_;
};

}  // namespace imgpipe
