// Preprocess: encoded image bytes -> uint8 pixels in the model's input geometry (OpenCV inside).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "imgpipe/model_cache.hpp"
#include "imgpipe/model_store.hpp"
#include "imgpipe/stage.hpp"

namespace imgpipe {

struct DecodeLimits {
  std::size_t max_file_bytes = 64u << 20;
  std::int64_t max_pixels = 100'000'000;  // of the source image, checked from its header before decoding
  int max_dimension = 30000;
};

// Decodes one image and fits it to `input`. Throws ImageError with the reason on any failure.
PixelImage decode_and_fit(const std::string& image_id, std::span<const std::uint8_t> bytes,
                          const InputSpec& input, const DecodeLimits& limits);

class ImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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
