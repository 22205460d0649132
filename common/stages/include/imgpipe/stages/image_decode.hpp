// Decoding one encoded image and fitting it to a model's input geometry (OpenCV inside image_decode.cpp).
// The part of preprocess that reads untrusted bytes: fuzz/decode_image builds it alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include "imgpipe/messages/batch.hpp"
#include "imgpipe/models/model_store.hpp"

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

}  // namespace imgpipe
