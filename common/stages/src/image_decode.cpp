#include "imgpipe/stages/image_decode.hpp"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstring>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "antialiased_resize.hpp"
#include "imgpipe/stages/image_probe.hpp"

namespace imgpipe {
namespace {

using Bytes = std::span<const std::uint8_t>;

// libjpeg decodes a truncated file into a picture whose missing rows are grey, and says so only on stderr.
// A JPEG must end with its end-of-image marker (possibly followed by padding), or it is truncated.
bool jpeg_has_end_marker(Bytes bytes) {
  const std::size_t window = std::min<std::size_t>(bytes.size(), 4096);
  for (std::size_t i = bytes.size() - window; i + 1 < bytes.size(); ++i) {
    if (bytes[i] == 0xFF && bytes[i + 1] == 0xD9) return true;
  }
  return false;
}

// The same for PNG: libpng reports a cut-off file on stderr ("PNG input buffer is incomplete") before
// OpenCV returns nothing, a stray line that would break a worker's JSON log. A PNG ends with its IEND chunk.
bool png_has_end_chunk(Bytes bytes) {
  const std::size_t window = std::min<std::size_t>(bytes.size(), 4096);
  for (std::size_t i = bytes.size() - window; i + 3 < bytes.size(); ++i) {
    if (bytes[i] == 'I' && bytes[i + 1] == 'E' && bytes[i + 2] == 'N' && bytes[i + 3] == 'D') return true;
  }
  return false;
}

// imdecode hands a file to the first of its decoders whose signature matches, and the DICOM one (GDCM) looks
// for "DICM" at byte 128 and comes before JPEG 2000 in that order. GDCM aborts the whole process on some
// malformed input (an assert in ExplicitDataElement::ReadPreValue), so a 200-byte JPEG 2000 file carrying
// that signature killed the worker (found by fuzz/decode_image). We decode no DICOM, so it never gets there.
bool has_dicom_signature(Bytes bytes) {
  return bytes.size() >= 132 && std::memcmp(bytes.data() + 128, "DICM", 4) == 0;
}

void check_before_decoding(Bytes bytes, const DecodeLimits& limits) {
  if (bytes.empty()) throw ImageError("empty file (0 bytes)");
  if (bytes.size() > limits.max_file_bytes) {
    throw ImageError("file of " + std::to_string(bytes.size()) + " bytes is over the limit of " +
                     std::to_string(limits.max_file_bytes) + " bytes");
  }
  const auto probe = probe_image(bytes);
  if (!probe) throw ImageError("not a supported image (" + describe_first_bytes(bytes) + ")");
  if (has_dicom_signature(bytes))
    throw ImageError("file carries a DICOM signature (\"DICM\" at byte 128); DICOM is not supported");
  if (probe->format == "gif")
    throw ImageError("GIF images are not supported (OpenCV 4.6 has no GIF decoder)");
  // Fail closed: a decoder would find dimensions this probe cannot, and then allocate whatever they say.
  if (!probe->width || !probe->height) {
    throw ImageError("corrupt or truncated " + probe->format +
                     " (no dimensions in its header; refused before decoding)");
  }
  const std::int64_t width = *probe->width;
  const std::int64_t height = *probe->height;
  if (width < 1 || height < 1) {
    throw ImageError(probe->format + " header claims impossible dimensions " + std::to_string(width) + "x" +
                     std::to_string(height));
  }
  if (width > limits.max_dimension || height > limits.max_dimension || width * height > limits.max_pixels) {
    throw ImageError(probe->format + " header claims " + std::to_string(width) + "x" +
                     std::to_string(height) + " pixels, over the limit of " +
                     std::to_string(limits.max_pixels) + " pixels or " +
                     std::to_string(limits.max_dimension) + " per side (refused before decoding)");
  }
  if (probe->format == "jpeg" && !jpeg_has_end_marker(bytes)) {
    throw ImageError("truncated JPEG (no end-of-image marker)");
  }
  if (probe->format == "png" && !png_has_end_chunk(bytes)) {
    throw ImageError("corrupt or truncated png (no IEND chunk at its end)");
  }
}

cv::Mat to_8bit(const cv::Mat& image) {
  switch (image.depth()) {
    case CV_8U:
      return image;
    case CV_16U: {
      cv::Mat out;
      image.convertTo(out, CV_8U, 1.0 / 257.0);
      return out;
    }
    case CV_32F:
    case CV_64F: {  // float TIFF/EXR: 0..1 by convention
      cv::Mat out;
      image.convertTo(out, CV_8U, 255.0);
      return out;
    }
    default: {
      cv::Mat out;
      cv::normalize(image, out, 0, 255, cv::NORM_MINMAX, CV_8U);
      return out;
    }
  }
}

// Alpha is dropped rather than composited: photos rarely carry it, and a fixed background would bias classes.
cv::Mat to_channels(const cv::Mat& image, int channels) {
  cv::Mat out;
  const int have = image.channels();
  if (channels == 1) {
    if (have == 1) return image;
    if (have == 2)
      cv::extractChannel(image, out, 0);
    else if (have == 3)
      cv::cvtColor(image, out, cv::COLOR_BGR2GRAY);
    else if (have == 4)
      cv::cvtColor(image, out, cv::COLOR_BGRA2GRAY);
    else
      throw ImageError("image has " + std::to_string(have) + " channels");
    return out;
  }
  if (have == 1)
    cv::cvtColor(image, out, cv::COLOR_GRAY2RGB);
  else if (have == 2) {
    cv::Mat grey;
    cv::extractChannel(image, grey, 0);
    cv::cvtColor(grey, out, cv::COLOR_GRAY2RGB);
  } else if (have == 3)
    cv::cvtColor(image, out, cv::COLOR_BGR2RGB);
  else if (have == 4)
    cv::cvtColor(image, out, cv::COLOR_BGRA2RGB);
  else
    throw ImageError("image has " + std::to_string(have) + " channels");
  return out;
}

// torchvision's Resize + CenterCrop on a PIL image: the short side scaled to min(W, H) / crop (truncating the
// long side as torchvision does), the centre taken with Python's round-half-even, the pixels resampled as PIL
// does (antialiased_resize.hpp). Only the kept pixels are computed, so a 30000x1 strip costs 224 columns.
cv::Mat fit_antialiased(const cv::Mat& image, const InputSpec& input) {
  if (input.resize == ResizeMode::stretch) {
    return resize_antialiased(image, cv::Size(input.width, input.height),
                              cv::Rect(0, 0, input.width, input.height));
  }
  const int shorter = static_cast<int>(std::lround(std::min(input.width, input.height) / input.crop));
  const double longer_ratio =
      static_cast<double>(std::max(image.cols, image.rows)) / std::min(image.cols, image.rows);
  const int longer = static_cast<int>(shorter * longer_ratio);
  cv::Size size = image.cols <= image.rows ? cv::Size(shorter, longer) : cv::Size(longer, shorter);
  size.width =
      std::max(size.width, input.width);  // a target wider than the image's shape: never crop outside
  size.height = std::max(size.height, input.height);
  const int left = static_cast<int>(std::nearbyint((size.width - input.width) / 2.0));
  const int top = static_cast<int>(std::nearbyint((size.height - input.height) / 2.0));
  return resize_antialiased(image, size, cv::Rect(left, top, input.width, input.height));
}

cv::Mat fit(const cv::Mat& image, const InputSpec& input) {
  if (input.interpolation == Interpolation::antialiased_linear) return fit_antialiased(image, input);
  const int interpolation = input.interpolation == Interpolation::area ? cv::INTER_AREA : cv::INTER_LINEAR;
  if (image.cols == input.width && image.rows == input.height) return image;
  cv::Mat out;
  if (input.resize == ResizeMode::stretch) {
    cv::resize(image, out, cv::Size(input.width, input.height), 0, 0, interpolation);
    return out;
  }
  // Take the centre at the target's aspect ratio, then scale only that. Scaling the whole image to cover the
  // target first would, for a long thin strip, allocate the strip's length times the scale: a 30000x1 PNG of
  // 100 bytes asked for 224 x 6.7 million pixels (4.5 GB) for a 224x224 model (regression input in
  // fuzz/corpus/decode_image, which the fuzz run replays under its malloc limit).
  // With crop < 1 the target covers only that part of the short side (torchvision's Resize + CenterCrop).
  const double scale = std::max(static_cast<double>(input.width) / image.cols,
                                static_cast<double>(input.height) / image.rows) /
                       input.crop;
  const int crop_width = std::clamp(static_cast<int>(std::lround(input.width / scale)), 1, image.cols);
  const int crop_height = std::clamp(static_cast<int>(std::lround(input.height / scale)), 1, image.rows);
  const cv::Rect centre((image.cols - crop_width) / 2, (image.rows - crop_height) / 2, crop_width,
                        crop_height);
  cv::resize(image(centre), out, cv::Size(input.width, input.height), 0, 0, interpolation);
  return out;
}

}  // namespace

PixelImage decode_and_fit(const std::string& image_id, Bytes bytes, const InputSpec& input,
                          const DecodeLimits& limits) {
  check_before_decoding(bytes, limits);
  cv::Mat decoded;
  try {
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8U, const_cast<std::uint8_t*>(bytes.data()));
    decoded = cv::imdecode(raw, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& error) {
    throw ImageError(std::string("decoder refused the image: ") + error.err);
  }
  if (decoded.empty()) {
    const auto probe = probe_image(bytes);
    throw ImageError("corrupt or truncated " + (probe ? probe->format : std::string("image")) +
                     " (the decoder could not read it)");
  }
  cv::Mat fitted = fit(to_channels(to_8bit(decoded), input.channels), input);
  if (!fitted.isContinuous()) fitted = fitted.clone();
  PixelImage out{image_id, fitted.cols, fitted.rows, fitted.channels(), {}};
  out.pixels.assign(fitted.data, fitted.data + fitted.total() * fitted.elemSize());
  return out;
}

}  // namespace imgpipe
