// The resampling torchvision's Resize applies to a PIL image: PIL's bilinear filter, widened by the scale
// factor when shrinking (so every source pixel contributes), in two separable 8-bit passes with PIL's own
// fixed-point rounding. Models trained with that preprocessing see the same pixels here; OpenCV's INTER_AREA
// and INTER_LINEAR differ enough to flip the top-1 of ambiguous photos (measured in tests/parity).
#pragma once

#include <opencv2/core.hpp>

namespace imgpipe {

// Resizes `image` (8-bit, 1 or 3 channels) to `size` and returns only the part of the result inside
// `region` (which must lie within `size`), computing no other output pixel: the same pixels as resizing the
// whole image and then cropping.
cv::Mat resize_antialiased(const cv::Mat& image, cv::Size size, cv::Rect region);

}  // namespace imgpipe
