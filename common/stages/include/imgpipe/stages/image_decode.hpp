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
// A JPEG is decoded upright (its EXIF orientation applied) and, when it is much larger than the model's
// input, at 1/2, 1/4 or 1/8 scale by libjpeg (see jpeg_scale_denominator). HEIF/HEIC/AVIF go through
// libheif, with their rotation and mirroring applied.
PixelImage decode_and_fit(const std::string& image_id, std::span<const std::uint8_t> bytes,
                          const InputSpec& input, const DecodeLimits& limits);

// The largest of 8, 4, 2 (else 1) by which libjpeg may scale a JPEG of this size (upright, i.e. after its
// orientation) while decoding, such that what the fit to `input` then resizes from is still at least
// `input`'s size in both directions: the whole image for stretch, the centre region for center-crop. The
// fit therefore only ever shrinks, as it would have from the full-size image.
int jpeg_scale_denominator(int width, int height, const InputSpec& input);

class ImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace imgpipe
