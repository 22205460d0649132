#include "antialiased_resize.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace imgpipe {
namespace {

// PIL's fixed point: coefficients carry 22 fractional bits, so a sum of up to 2^8 * 2^22 fits in 32 bits
// with room for the rounding half.
constexpr int kPrecisionBits = 32 - 8 - 2;

// For each output position: the first source index and the fixed-point weights of the source pixels that
// contribute, exactly as PIL's precompute_coeffs and normalize_coeffs_8bpc compute them.
struct Taps {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<std::int32_t> weights;  // `width` per output position
  int width = 0;
};

double triangle(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

Taps taps_for(int in_size, int out_size, int out_first, int out_count) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the bilinear filter's support is 1
  Taps taps;
  taps.width = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(static_cast<std::size_t>(out_count));
  taps.count.resize(static_cast<std::size_t>(out_count));
  taps.weights.assign(static_cast<std::size_t>(out_count) * static_cast<std::size_t>(taps.width), 0);
  std::vector<double> weights(static_cast<std::size_t>(taps.width));
  for (int i = 0; i < out_count; ++i) {
    const double centre = (out_first + i + 0.5) * scale;
    const int first = std::max(static_cast<int>(centre - support + 0.5), 0);
    const int last = std::min(static_cast<int>(centre + support + 0.5), in_size);
    const int count = std::min(last - first, taps.width);
    double total = 0.0;
    for (int k = 0; k < count; ++k) {
      weights[static_cast<std::size_t>(k)] = triangle((first + k - centre + 0.5) / filter_scale);
      total += weights[static_cast<std::size_t>(k)];
    }
    taps.first[static_cast<std::size_t>(i)] = first;
    taps.count[static_cast<std::size_t>(i)] = count;
    for (int k = 0; k < count; ++k) {
      const double normalised = total != 0.0 ? weights[static_cast<std::size_t>(k)] / total : 0.0;
      // PIL rounds half away from zero here (negative weights occur only for other filters).
      const double fixed = normalised * (1 << kPrecisionBits);
      taps.weights[static_cast<std::size_t>(i * taps.width + k)] =
          static_cast<std::int32_t>(fixed < 0 ? std::trunc(fixed - 0.5) : std::trunc(fixed + 0.5));
    }
  }
  return taps;
}

std::uint8_t clip8(std::int64_t fixed) {
  return static_cast<std::uint8_t>(std::clamp<std::int64_t>(fixed >> kPrecisionBits, 0, 255));
}

// out(y, x) = sum over the taps of x of in(y, first + k); rows and channels as they are.
cv::Mat horizontal(const cv::Mat& in, const Taps& taps) {
  const int channels = in.channels();
  const int out_width = static_cast<int>(taps.first.size());
  cv::Mat out(in.rows, out_width, in.type());
  for (int y = 0; y < in.rows; ++y) {
    const std::uint8_t* source = in.ptr<std::uint8_t>(y);
    std::uint8_t* target = out.ptr<std::uint8_t>(y);
    for (int x = 0; x < out_width; ++x) {
      const int first = taps.first[static_cast<std::size_t>(x)];
      const int count = taps.count[static_cast<std::size_t>(x)];
      const std::int32_t* weights = &taps.weights[static_cast<std::size_t>(x * taps.width)];
      for (int c = 0; c < channels; ++c) {
        std::int64_t sum = std::int64_t{1} << (kPrecisionBits - 1);
        for (int k = 0; k < count; ++k) sum += std::int64_t{source[(first + k) * channels + c]} * weights[k];
        target[x * channels + c] = clip8(sum);
      }
    }
  }
  return out;
}

// out(y, x) = sum over the taps of y of in(first + k - offset, x): `in` holds source rows from `offset` on.
cv::Mat vertical(const cv::Mat& in, int offset, const Taps& taps) {
  const int row_bytes = in.cols * in.channels();
  const int out_height = static_cast<int>(taps.first.size());
  cv::Mat out(out_height, in.cols, in.type());
  for (int y = 0; y < out_height; ++y) {
    const int first = taps.first[static_cast<std::size_t>(y)] - offset;
    const int count = taps.count[static_cast<std::size_t>(y)];
    const std::int32_t* weights = &taps.weights[static_cast<std::size_t>(y * taps.width)];
    std::uint8_t* target = out.ptr<std::uint8_t>(y);
    for (int i = 0; i < row_bytes; ++i) {
      std::int64_t sum = std::int64_t{1} << (kPrecisionBits - 1);
      for (int k = 0; k < count; ++k) sum += std::int64_t{in.ptr<std::uint8_t>(first + k)[i]} * weights[k];
      target[i] = clip8(sum);
    }
  }
  return out;
}

}  // namespace

cv::Mat resize_antialiased(const cv::Mat& image, cv::Size size, cv::Rect region) {
  if (image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3)) {
    throw std::invalid_argument("resize_antialiased takes 8-bit images of 1 or 3 channels");
  }
  if (region.x < 0 || region.y < 0 || region.br().x > size.width || region.br().y > size.height ||
      region.empty()) {
    throw std::invalid_argument("resize_antialiased: the region lies outside the resized image");
  }
  const Taps across = taps_for(image.cols, size.width, region.x, region.width);
  const Taps down = taps_for(image.rows, size.height, region.y, region.height);
  // Only the source rows the vertical pass reads go through the horizontal one, as in PIL.
  const int first_row = down.first.front();
  int last_row = first_row;
  for (std::size_t i = 0; i < down.first.size(); ++i)
    last_row = std::max(last_row, down.first[i] + down.count[i]);
  const cv::Mat rows = image.rowRange(first_row, last_row);
  // PIL skips a pass whose size does not change; so does this (the taps would be the identity anyway).
  const bool same_width = image.cols == size.width && region.x == 0 && region.width == size.width;
  const bool same_height = image.rows == size.height && region.y == 0 && region.height == size.height;
  const cv::Mat across_done = same_width ? rows : horizontal(rows, across);
  return same_height ? across_done.clone() : vertical(across_done, first_row, down);
}

}  // namespace imgpipe
