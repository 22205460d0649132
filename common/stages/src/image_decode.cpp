#include "imgpipe/stages/image_decode.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>

#include <libheif/heif.h>
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

// Returns the probe of an image that may be decoded; throws the reason it may not.
ImageProbe check_before_decoding(Bytes bytes, const DecodeLimits& limits) {
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
  return *probe;
}

bool is_heif(const ImageProbe& probe) {
  return probe.format == "heif" || probe.format == "avif";
}

// ---- libheif ---------------------------------------------------------------------------------------------

// Owners of libheif's handles: each is freed by its own function.
struct HeifFree {
  void operator()(heif_context* context) const { heif_context_free(context); }
  void operator()(heif_image_handle* handle) const { heif_image_handle_release(handle); }
  void operator()(heif_image* image) const { heif_image_release(image); }
  void operator()(heif_decoding_options* options) const { heif_decoding_options_free(options); }
};
template <typename T>
using HeifPtr = std::unique_ptr<T, HeifFree>;

// heif_init registers libheif's decoders (reference counted); once per process, released at exit. Without
// it libheif registers them anyway but never frees them.
class LibheifInit {
 public:
  LibheifInit() {
    if (const heif_error error = heif_init(nullptr); error.code != heif_error_Ok)
      throw ImageError(std::string("libheif failed to start: ") + error.message);
  }
  ~LibheifInit() { heif_deinit(); }
  LibheifInit(const LibheifInit&) = delete;
  LibheifInit& operator=(const LibheifInit&) = delete;
};

void check_heif(const heif_error& error, const ImageProbe& probe, const char* step) {
  if (error.code == heif_error_Ok) return;
  std::string message = error.message != nullptr ? error.message : "no reason given";
  // Some of libheif's messages end with a newline, which would split the image's error line.
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.pop_back();
  throw ImageError("corrupt, truncated or unsupported " + probe.format + " (libheif could not " + step +
                   ": " + message + ")");
}

// The primary image as 8-bit interleaved RGB, with the file's transformations (irot rotation, imir mirror,
// clap crop) applied: libheif does that unless told to ignore them.
cv::Mat decode_heif(Bytes bytes, const ImageProbe& probe, const DecodeLimits& limits) {
  static const LibheifInit init;
  const HeifPtr<heif_context> context(heif_context_alloc());
  if (!context) throw std::bad_alloc();
  // libheif's own per-side limit as well, for whatever it decodes besides the primary image's declared size
  // (grid tiles, for one): the probe checked only that.
  heif_context_set_maximum_image_size_limit(context.get(), limits.max_dimension);
  check_heif(heif_context_read_from_memory_without_copy(context.get(), bytes.data(), bytes.size(), nullptr),
             probe, "read its structure");
  heif_image_handle* primary = nullptr;
  check_heif(heif_context_get_primary_image_handle(context.get(), &primary), probe, "find its primary image");
  const HeifPtr<heif_image_handle> handle(primary);
  const HeifPtr<heif_decoding_options> options(heif_decoding_options_alloc());
  if (!options) throw std::bad_alloc();
  options->convert_hdr_to_8bit = 1;  // 10-bit photos (iPhone HDR) to the 8 bits the rest of the path takes
  options->strict_decoding = 1;      // a damaged file is an error, not a best-effort picture
  heif_image* decoded = nullptr;
  check_heif(heif_decode_image(handle.get(), &decoded, heif_colorspace_RGB, heif_chroma_interleaved_RGB,
                               options.get()),
             probe, "decode it");
  const HeifPtr<heif_image> image(decoded);
  int stride = 0;
  const std::uint8_t* plane = heif_image_get_plane_readonly(image.get(), heif_channel_interleaved, &stride);
  const int width = heif_image_get_width(image.get(), heif_channel_interleaved);
  const int height = heif_image_get_height(image.get(), heif_channel_interleaved);
  if (plane == nullptr || width < 1 || height < 1 ||
      heif_image_get_bits_per_pixel_range(image.get(), heif_channel_interleaved) != 8) {
    throw ImageError("unsupported " + probe.format + " (libheif gave no 8-bit RGB image)");
  }
  // A copy, because the pixels belong to `image`; small beside the HEVC or AV1 decoding itself.
  return cv::Mat(height, width, CV_8UC3, const_cast<std::uint8_t*>(plane), static_cast<std::size_t>(stride))
      .clone();
}

// ---- OpenCV ----------------------------------------------------------------------------------------------

cv::Mat decode_with_opencv(Bytes bytes, const ImageProbe& probe, int flags) {
  cv::Mat decoded;
  try {
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8U, const_cast<std::uint8_t*>(bytes.data()));
    decoded = cv::imdecode(raw, flags);
  } catch (const cv::Exception& error) {
    throw ImageError(std::string("decoder refused the image: ") + error.err);
  }
  if (decoded.empty())
    throw ImageError("corrupt or truncated " + probe.format + " (the decoder could not read it)");
  return decoded;
}

// imdecode's flags for a JPEG decoded at 1/denominator scale, in the model's colour (grey: libjpeg's own
// luma, without decoding colour first). OpenCV applies EXIF orientation with every flag but
// IMREAD_UNCHANGED; here it is told not to, because the orientation also decides the scale (a photo on its
// side swaps the sides the model's input is compared with) and is applied once, by upright().
int jpeg_flags(int channels, int denominator) {
  const bool grey = channels == 1;
  int flags = grey ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR;
  if (denominator == 2) flags = grey ? cv::IMREAD_REDUCED_GRAYSCALE_2 : cv::IMREAD_REDUCED_COLOR_2;
  if (denominator == 4) flags = grey ? cv::IMREAD_REDUCED_GRAYSCALE_4 : cv::IMREAD_REDUCED_COLOR_4;
  if (denominator == 8) flags = grey ? cv::IMREAD_REDUCED_GRAYSCALE_8 : cv::IMREAD_REDUCED_COLOR_8;
  return flags | cv::IMREAD_IGNORE_ORIENTATION;
}

// Turns stored pixels upright as EXIF orientation `orientation` says (the TIFF/EXIF definitions: 2 mirrored,
// 3 upside down, 4 upside down mirrored, 5 transposed, 6 needs a quarter turn clockwise, 7 transversed,
// 8 needs a quarter turn anticlockwise).
cv::Mat upright(const cv::Mat& image, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2:
      cv::flip(image, out, 1);
      return out;
    case 3:
      cv::rotate(image, out, cv::ROTATE_180);
      return out;
    case 4:
      cv::flip(image, out, 0);
      return out;
    case 5:
      cv::transpose(image, out);
      return out;
    case 6:
      cv::rotate(image, out, cv::ROTATE_90_CLOCKWISE);
      return out;
    case 7:
      cv::transpose(image, out);
      cv::flip(out, out, -1);
      return out;
    case 8:
      cv::rotate(image, out, cv::ROTATE_90_COUNTERCLOCKWISE);
      return out;
    default:
      return image;
  }
}

cv::Mat decode_jpeg(Bytes bytes, const ImageProbe& probe, const InputSpec& input) {
  const bool sideways = probe.orientation >= 5;  // 5..8 swap width and height
  const int width = sideways ? *probe.height : *probe.width;
  const int height = sideways ? *probe.width : *probe.height;
  const int denominator = jpeg_scale_denominator(width, height, input);
  return upright(decode_with_opencv(bytes, probe, jpeg_flags(input.channels, denominator)),
                 probe.orientation);
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

enum class ColourOrder { bgr, rgb };  // OpenCV decodes to BGR(A), libheif to RGB

// Alpha is dropped rather than composited: photos rarely carry it, and a fixed background would bias classes.
cv::Mat to_channels(const cv::Mat& image, int channels, ColourOrder order) {
  cv::Mat out;
  const int have = image.channels();
  if (have == 3 && order == ColourOrder::rgb) {
    if (channels == 3) return image;
    cv::cvtColor(image, out, cv::COLOR_RGB2GRAY);
    return out;
  }
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

// The part of a cols x rows image that fit() scales to the model's input: all of it for stretch. For
// center-crop, the centre at the target's aspect ratio: scaling the whole image to cover the target first
// would, for a long thin strip, allocate the strip's length times the scale (a 30000x1 PNG of 100 bytes
// asked for 224 x 6.7 million pixels, 4.5 GB, for a 224x224 model: regression input in
// fuzz/corpus/decode_image, which the fuzz run replays under its malloc limit). With crop < 1 the target
// covers only that part of the short side (torchvision's Resize + CenterCrop).
cv::Rect source_region(int cols, int rows, const InputSpec& input) {
  if (input.resize == ResizeMode::stretch) return {0, 0, cols, rows};
  const double scale =
      std::max(static_cast<double>(input.width) / cols, static_cast<double>(input.height) / rows) /
      input.crop;
  const int crop_width = std::clamp(static_cast<int>(std::lround(input.width / scale)), 1, cols);
  const int crop_height = std::clamp(static_cast<int>(std::lround(input.height / scale)), 1, rows);
  return {(cols - crop_width) / 2, (rows - crop_height) / 2, crop_width, crop_height};
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
  cv::resize(image(source_region(image.cols, image.rows, input)), out, cv::Size(input.width, input.height), 0,
             0, interpolation);
  return out;
}

}  // namespace

int jpeg_scale_denominator(int width, int height, const InputSpec& input) {
  if (width < 1 || height < 1) return 1;
  // A model trained on torchvision's antialiased resize of the full-size decode (antialiased_resize.hpp)
  // keeps twice its input's resolution, so PIL's filter still averages several DCT-scaled pixels per output
  // pixel: the parity test (tests/parity) holds, and a 12-megapixel photo still decodes at 1/4.
  const int margin = input.interpolation == Interpolation::antialiased_linear ? 2 : 1;
  for (const int denominator : {8, 4, 2}) {
    // libjpeg rounds the scaled sides up.
    const int scaled_width = width / denominator + (width % denominator != 0);
    const int scaled_height = height / denominator + (height % denominator != 0);
    const cv::Rect region = source_region(scaled_width, scaled_height, input);
    if (region.width >= margin * input.width && region.height >= margin * input.height) return denominator;
  }
  return 1;
}

PixelImage decode_and_fit(const std::string& image_id, Bytes bytes, const InputSpec& input,
                          const DecodeLimits& limits) {
  const ImageProbe probe = check_before_decoding(bytes, limits);
  cv::Mat decoded;
  ColourOrder order = ColourOrder::bgr;
  if (is_heif(probe)) {
    decoded = decode_heif(bytes, probe, limits);
    order = ColourOrder::rgb;
  } else if (probe.format == "jpeg") {
    decoded = decode_jpeg(bytes, probe, input);
  } else {
    decoded = decode_with_opencv(bytes, probe, cv::IMREAD_UNCHANGED);
  }
  cv::Mat fitted = fit(to_channels(to_8bit(decoded), input.channels, order), input);
  if (!fitted.isContinuous()) fitted = fitted.clone();
  PixelImage out{image_id, fitted.cols, fitted.rows, fitted.channels(), {}};
  out.pixels.assign(fitted.data, fitted.data + fitted.total() * fitted.elemSize());
  return out;
}

}  // namespace imgpipe
