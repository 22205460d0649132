// A job's inputs as the user names them: files, folders walked for images, @lists; and reading one input
// safely (size limit, symlinks confined to the folder they were found in).
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "imgpipe/messages/batch.hpp"

namespace imgpipe {

struct JobInput {
  std::string image_id;        // unique within the job; what messages carry instead of the path
  std::filesystem::path path;  // as the user named it
  // The folder the user named, when this file was found by walking it: the file must resolve inside that
  // folder when it is read, so a symlink out of it is refused rather than followed. Empty for a file the
  // user named explicitly (on the command line or in a list), which is taken as named.
  std::filesystem::path confined_to{};
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Files are taken as named; folders are walked recursively for image extensions (.jpg .jpeg .png .bmp
// .webp .tif .tiff .gif .heic .heif .avif, any case), in sorted order, without entering symlinked folders;
// @list.txt names one input per line (relative to the list's folder; blank lines and lines starting with #
// are skipped). Throws UsageError for an unreadable list. GIFs are collected so that each gets its "not
// supported" line instead of vanishing from the results unnoticed.
struct CollectedInputs {
  std::vector<JobInput> images;
  // Files in walked folders left out because their extension is not an image's, in walk order: they get no
  // result line, so the job names them in its summary instead (describe_not_images).
  std::vector<std::filesystem::path> not_images;
};
CollectedInputs gather_inputs(const std::vector<std::string>& arguments);
// gather_inputs(arguments).images, for callers with no one to tell about the rest (a training folder).
std::vector<JobInput> collect_inputs(const std::vector<std::string>& arguments);

// "skipped 2 files that are not images by their extension: a.txt, b.xcf", naming at most `max_names` and
// then "and N more"; empty when nothing was skipped.
std::string describe_not_images(const std::vector<std::filesystem::path>& not_images,
                                std::size_t max_names = 10);

// Reads one input for publishing. An unreadable or oversized file, a broken symlink, a symlink loop, or a
// file found in a folder that resolves outside it yields the error result instead.
struct ReadOutcome {
  std::optional<EncodedImage> image;
  std::optional<ImageResult> error;
};
ReadOutcome read_input(const JobInput& input, std::size_t max_file_bytes);

}  // namespace imgpipe
