// Fuzz target: what the preprocess stage does with one encoded image (common/stages/src/image_decode.cpp):
// the header probe (image_probe.cpp), the limits checked before decoding, OpenCV's imdecode, channel
// conversion and the fit to the model's input geometry. The first byte picks that geometry, so both resize
// modes, both interpolations, grey and RGB and odd sizes are all exercised; the rest is the file. Any input
// must give a PixelImage of exactly the asked geometry or an ImageError: no other exception, no crash, no
// sanitizer report, and no allocation past -rss_limit_mb.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include <opencv2/core.hpp>

#include "imgpipe/stages/image_decode.hpp"

namespace {

imgpipe::InputSpec geometry_from(std::uint8_t choice) {
  imgpipe::InputSpec input;
  static constexpr int sides[4] = {1, 7, 28, 224};  // 1: degenerate; 7: odd; 28 and 224: real models
  input.width = sides[choice & 3];
  input.height = sides[(choice >> 2) & 3];
  input.channels = (choice & 16) ? 3 : 1;
  input.resize = (choice & 32) ? imgpipe::ResizeMode::center_crop : imgpipe::ResizeMode::stretch;
  input.interpolation = (choice & 64) ? imgpipe::Interpolation::linear : imgpipe::Interpolation::area;
  if (choice & 128) input.interpolation = imgpipe::Interpolation::antialiased_linear;
  return input;
}

// The production limits, except the pixel budget: 100 megapixels per image is what a worker allows, but
// decoding that much per input would slow fuzzing to a crawl. The limit's own logic is the same code.
imgpipe::DecodeLimits fuzz_limits() {
  imgpipe::DecodeLimits limits;
  limits.max_pixels = 4'000'000;
  return limits;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cv::setNumThreads(0);  // deterministic, and no worker threads for the sanitizers to follow
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const imgpipe::InputSpec input = geometry_from(data[0]);
  const std::span<const std::uint8_t> file(data + 1, size - 1);
  try {
    const imgpipe::PixelImage out = imgpipe::decode_and_fit("fuzz", file, input, fuzz_limits());
    if (out.width != input.width || out.height != input.height || out.channels != input.channels ||
        out.pixels.size() != static_cast<std::size_t>(input.width * input.height * input.channels)) {
      std::fprintf(stderr, "decoded to %dx%dx%d (%zu bytes), asked for %dx%dx%d\n", out.width, out.height,
                   out.channels, out.pixels.size(), input.width, input.height, input.channels);
      std::abort();
    }
  } catch (const imgpipe::ImageError&) {
    // refused with a reason: the image's error line
  } catch (const cv::Exception&) {
    // PreprocessStage::process turns these into "image processing failed: ..." error lines
  }
  return 0;
}
