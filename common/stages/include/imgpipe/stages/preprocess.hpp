// Preprocess: encoded image bytes -> uint8 pixels in the model's input geometry (OpenCV inside). An image
// that travels as an object reference is fetched here first (GetObject of the listed version, at most
// limits.max_file_bytes), four at a time ahead of the decoder, so a batch of camera photos never sits in
// memory at once and the network waits overlap the decoding.
#pragma once

#include <memory>

#include "imgpipe/models/model_cache.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/pipeline/stage.hpp"
#include "imgpipe/stages/image_decode.hpp"
#include "imgpipe/storage/s3_client.hpp"

namespace imgpipe {

class PreprocessStage final : public Stage {
 public:
  // `objects` fetches referenced images; without one they fail with the reason. `loaded_versions`: the
  // versions of each model kept loaded (ModelCache).
  PreprocessStage(ModelStore store, DecodeLimits limits = {}, ModelLoadObserver on_load = {},
                  std::shared_ptr<const S3Client> objects = {},
                  std::size_t loaded_versions = kDefaultLoadedVersions);
  const char* name() const override { return "preprocess"; }
  BatchKind input_kind() const override { return BatchKind::images; }
  BatchKind output_kind() const override { return BatchKind::pixels; }
  StageOutput process(const Batch& in) override;

 private:
  std::vector<std::uint8_t> fetch(const ObjectRef& object) const;
  ModelCache<ModelConfig> configs_;
  DecodeLimits limits_;
  std::shared_ptr<const S3Client> objects_;
};

}  // namespace imgpipe
