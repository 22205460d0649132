// Small JPEG previews of photos for pages a person looks at. The bytes go through the same checks as the
// pipeline's preprocess (size limit, header probe before decoding, truncation), so a results file naming a
// hostile or broken file costs one "no preview" box, never the report.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace imgpipe {

struct ThumbnailOptions {
  int max_side = 160;     // the thumbnail fits in max_side x max_side, aspect kept; never enlarged
  int jpeg_quality = 80;  // 0-100
};

struct Thumbnail {
  std::vector<std::uint8_t> jpeg;  // empty when the file could not be made into one
  int width = 0;
  int height = 0;
  std::string error;  // why not, e.g. "cannot read photos/a.jpg: No such file or directory"
  bool ok() const { return !jpeg.empty(); }
};

// Never throws for a bad or missing file: the reason is in Thumbnail::error.
Thumbnail make_thumbnail(const std::filesystem::path& file, const ThumbnailOptions& options = {});

}  // namespace imgpipe
