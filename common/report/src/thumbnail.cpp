// Thumbnails through the stages' decode_and_fit: it already refuses what a decoder must not see (bombs,
// DICOM, truncated files) and converts any depth and channel count to 8-bit RGB; asking it for the
// aspect-preserving size makes its "stretch" a plain downscale.
#include "imgpipe/report/thumbnail.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "imgpipe/stages/image_decode.hpp"
#include "imgpipe/stages/image_probe.hpp"

namespace imgpipe {
namespace {

// The same cap as a job's inputs: a file the pipeline would not read is not read for its picture either.
constexpr std::uintmax_t kMaxFileBytes = 64u << 20;

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& file) {
  std::error_code error;
  const auto size = std::filesystem::file_size(file, error);
  if (error) throw ImageError("cannot read " + file.string() + ": " + error.message());
  if (size > kMaxFileBytes) {
    throw ImageError("file of " + std::to_string(size) + " bytes is over the limit of " +
                     std::to_string(kMaxFileBytes) + " bytes");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ImageError("cannot read " + file.string() + ": " + std::strerror(errno));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    throw ImageError("cannot read " + file.string() + ": it changed while being read");
  return bytes;
}

// The largest size inside max_side x max_side with the source's aspect ratio; small sources keep theirs.
InputSpec thumbnail_geometry(std::span<const std::uint8_t> bytes, int max_side) {
  InputSpec spec;
  spec.channels = 3;
  spec.resize = ResizeMode::stretch;
  spec.interpolation = Interpolation::area;
  const auto probe = probe_image(bytes);
  // No dimensions: decode_and_fit refuses the file with the precise reason before any of this matters.
  const int width = probe && probe->width ? std::max(1, *probe->width) : 1;
  const int height = probe && probe->height ? std::max(1, *probe->height) : 1;
  const double scale = std::min(1.0, static_cast<double>(max_side) / std::max(width, height));
  spec.width = std::max(1, static_cast<int>(std::lround(width * scale)));
  spec.height = std::max(1, static_cast<int>(std::lround(height * scale)));
  return spec;
}

}  // namespace

Thumbnail make_thumbnail(const std::filesystem::path& file, const ThumbnailOptions& options) {
  Thumbnail thumbnail;
  try {
    const auto bytes = read_bytes(file);
    const PixelImage rgb =
        decode_and_fit(file.string(), bytes, thumbnail_geometry(bytes, options.max_side), DecodeLimits{});
    const cv::Mat pixels(rgb.height, rgb.width, CV_8UC3, const_cast<std::uint8_t*>(rgb.pixels.data()));
    cv::Mat bgr;
    cv::cvtColor(pixels, bgr, cv::COLOR_RGB2BGR);
    if (!cv::imencode(".jpg", bgr, thumbnail.jpeg, {cv::IMWRITE_JPEG_QUALITY, options.jpeg_quality}) ||
        thumbnail.jpeg.empty()) {
      thumbnail.jpeg.clear();
      thumbnail.error = "the JPEG encoder failed";
      return thumbnail;
    }
    thumbnail.width = rgb.width;
    thumbnail.height = rgb.height;
  } catch (const ImageError& error) {
    thumbnail.error = error.what();
  } catch (const cv::Exception& error) {
    thumbnail.error = std::string("OpenCV: ") + error.err;
  } catch (const std::bad_alloc&) {
    thumbnail.error = "out of memory while decoding";
  }
  return thumbnail;
}

}  // namespace imgpipe
