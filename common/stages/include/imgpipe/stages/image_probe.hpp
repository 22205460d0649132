// Reads an image's format and dimensions from its first bytes, before any decoder allocates anything:
// this is where decompression bombs and non-images are turned away with a precise reason.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace imgpipe {

struct ImageProbe {
  std::string format;        // "jpeg", "png", "bmp", "webp", "tiff", "gif", "jpeg2000", ...
  std::optional<int> width;  // from the header; unknown only when the header is cut short or corrupt
  std::optional<int> height;
};

// Returns nullopt when the bytes start like no image format we know.
std::optional<ImageProbe> probe_image(std::span<const std::uint8_t> bytes);
// "first bytes 47 49 46 38" — for error messages about unrecognised content.
std::string describe_first_bytes(std::span<const std::uint8_t> bytes, std::size_t count = 8);

}  // namespace imgpipe
