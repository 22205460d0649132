// Reads an image's format and dimensions from its first bytes, before any decoder allocates anything:
// this is where decompression bombs and non-images are turned away with a precise reason.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace imgpipe {

struct ImageProbe {
  std::string format;        // "jpeg", "png", "bmp", "webp", "tiff", "gif", "jpeg2000", "heif", "avif", ...
  std::optional<int> width;  // as stored, from the header; unknown only when it is cut short or corrupt
  std::optional<int> height;
  // A JPEG's EXIF Orientation (1..8: how the stored pixels must be turned to be upright; 1 when there is no
  // tag or its value is not one of those). HEIF carries its turns in irot/imir, which libheif applies, and
  // the format says to ignore EXIF orientation, so for every other format this stays 1.
  int orientation = 1;
};

// Returns nullopt when the bytes start like no image format we know.
std::optional<ImageProbe> probe_image(std::span<const std::uint8_t> bytes);
// "first bytes 47 49 46 38" — for error messages about unrecognised content.
std::string describe_first_bytes(std::span<const std::uint8_t> bytes, std::size_t count = 8);

}  // namespace imgpipe
