// Preprocess: encoded image bytes -> uint8 pixels in the model's input geometry (OpenCV inside).
#pragma once

#include "imgpipe/models/model_cache.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/pipeline/stage.hpp"
#include "imgpipe/stages/image_decode.hpp"

namespace imgpipe {

class PreprocessStage final : public Stage {
 public:
  PreprocessStage(ModelStore store, DecodeLimits limits = {}, ModelLoadObserver on_load = {});
  const char* name() const override { return "preprocess"; }
  BatchKind input_kind() const override { return BatchKind::images; }
  BatchKind output_kind() const override { return BatchKind::pixels; }
  StageOutput process(const Batch& in) override;

 private:
  ModelCache<ModelConfig> configs_;
  DecodeLimits limits_;
};

}  // namespace imgpipe
