// Why an image failed in a worker, as the small fixed set the metrics count (ops/metrics.hpp).
#pragma once

#include <string_view>

#include "imgpipe/ops/metrics.hpp"

namespace imgpipe {

// Derives the class from the error text the stage wrote; `stage` is the stage that failed the image (every
// per-image failure after the stage that decodes the files comes from the model, not from the image file).
ImageFailure classify_failure(std::string_view stage, std::string_view error);

}  // namespace imgpipe
