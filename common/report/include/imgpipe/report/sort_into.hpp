// Photos placed into one folder per label (DIR/<label>/), as hard links where possible and copies where not,
// so that a person can browse a job's categories in any file manager. The originals are never moved or
// changed, and sorting the same results again adds nothing.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace imgpipe {

struct PhotoToPlace {
  std::filesystem::path source;      // where the photo is now
  std::optional<std::string> label;  // none: the image failed and is not placed
};

struct PlacementProblem {
  std::filesystem::path source;
  std::string reason;
};

struct SortSummary {
  std::size_t linked = 0;                  // new hard links
  std::size_t copied = 0;                  // new copies (linking failed, e.g. another file system)
  std::size_t already_placed = 0;          // found in place from an earlier sort of the same photos
  std::size_t failed_images = 0;           // no label: not placed
  std::size_t folders = 0;                 // label folders that hold the photos placed
  std::vector<PlacementProblem> problems;  // photos with a label that could not be placed
  std::size_t placed() const { return linked + copied + already_placed; }
};

// The folder name for a label: '/', NUL and control characters become '_', so does a leading '.' (no
// hidden folders, no "." or ".."), an empty label is "_", and the name is cut to 200 bytes at a character
// boundary (ImageNet labels are long synonym lists).
std::string label_folder_name(const std::string& label);

// The name a photo gets in its label folder: its own file name, or, when a different file already has that
// name there, "<stem>~<first 8 hex digits of sha256 of the source's absolute path><ext>", stable across
// runs. A photo already at either name (the same file, or a copy with the same bytes) is left as it is.
// Throws std::runtime_error when `dir` cannot be created; a photo that cannot be placed is a problem in the
// summary, not an exception.
SortSummary sort_into_folders(const std::vector<PhotoToPlace>& photos, const std::filesystem::path& dir);

// "placed 12 photos into 3 folders under DIR (12 linked, 0 copied, 0 already there); 2 failed images not
// placed"
std::string describe(const SortSummary& summary, const std::filesystem::path& dir);

}  // namespace imgpipe
