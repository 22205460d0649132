// A job's inputs as the user names them: files, folders walked for images, @lists; and reading one input
// safely (size limit, symlinks confined to the folder they were found in).
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "imgpipe/messages/batch.hpp"

namespace imgpipe {

class S3Client;

struct JobInput {
  std::string image_id;        // unique within the job; what messages carry instead of the path
  std::filesystem::path path;  // as the user named it
  // The folder the user named, when this file was found by walking it: the file must resolve inside that
  // folder when it is read, so a symlink out of it is refused rather than followed. Empty for a file the
  // user named explicitly (on the command line or in a list), which is taken as named.
  std::filesystem::path confined_to{};
  // An object in a bucket (path is then its s3://bucket/key): its bytes are fetched by the first stage, not
  // read here. A listed object comes with its ETag and size; one named alone (on the command line or in a
  // list), or listed by a server whose listing gives no ETags (s3s-fs), has an empty ETag until
  // read_object_input asks the server (HeadObject).
  std::optional<ObjectRef> object{};
};

// Input i's image id: i in decimal, zero-padded to six digits ("000042"), so ids sort as their inputs do in
// jobs of up to a million.
std::string input_id(std::size_t index);

// A job's inputs, read once in order: from a vector (inputs.hpp) or from an inputs file (input_file.hpp).
class InputSource {
 public:
  virtual ~InputSource() = default;
  virtual std::optional<JobInput> next() = 0;
};

// Reads a vector that must outlive it.
class VectorInputSource final : public InputSource {
 public:
  explicit VectorInputSource(const std::vector<JobInput>& inputs) : inputs_(inputs) {}
  std::optional<JobInput> next() override {
    if (position_ == inputs_.size()) return std::nullopt;
    return inputs_[position_++];
  }

 private:
  const std::vector<JobInput>& inputs_;
  std::size_t position_ = 0;
};

// Passes on the inputs of another source that `keep` accepts (a resumed job's inputs still to publish).
class FilteredInputSource final : public InputSource {
 public:
  FilteredInputSource(InputSource& source, std::function<bool(const JobInput&)> keep)
      : source_(source), keep_(std::move(keep)) {}
  std::optional<JobInput> next() override {
    while (auto input = source_.next()) {
      if (keep_(*input)) return input;
    }
    return std::nullopt;
  }

 private:
  InputSource& source_;
  std::function<bool(const JobInput&)> keep_;
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Files are taken as named; folders are walked recursively for image extensions (.jpg .jpeg .png .bmp
// .webp .tif .tiff .gif .heic .heif .avif, any case), in sorted order, without entering symlinked folders;
// @list.txt names one input per line (relative to the list's folder; blank lines and lines starting with #
// are skipped). s3://bucket/prefix/ (ending in '/', or the bucket alone) lists every object under the prefix
// (ListObjectsV2) with the same extension rule, in key order; s3://bucket/key is that one object; both may
// also be lines of a list. They need `objects` (else UsageError); a listing that fails throws S3Error.
// Throws UsageError for an unreadable list. GIFs are collected so that each gets its "not
// supported" line instead of vanishing from the results unnoticed.
struct CollectedInputs {
  std::vector<JobInput> images;
  // Files in walked folders left out because their extension is not an image's, in walk order: they get no
  // result line, so the job names them in its summary instead (describe_not_images). Objects of a listed
  // prefix too, as s3://bucket/key.
  std::vector<std::filesystem::path> not_images;
};
CollectedInputs gather_inputs(const std::vector<std::string>& arguments, const S3Client* objects = nullptr);

// gather_inputs without holding the inputs: each goes to `on_input` as it is found, with its id
// (input_id(i)); a list is read line by line, so a manifest of millions of lines costs no memory. (A walked
// folder is sorted, so its own paths are held while it is walked; a listed prefix likewise.) Returns the
// files left out as not images.
std::vector<std::filesystem::path> stream_inputs(const std::vector<std::string>& arguments,
                                                 const S3Client* objects,
                                                 const std::function<void(JobInput&&)>& on_input);

// .jpg .jpeg .png .bmp .webp .tif .tiff .gif .heic .heif .avif, any case: what a walk or a listing collects.
bool has_image_extension(const std::filesystem::path& path);
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

// The reference an object input travels as, checked like a file: over `max_file_bytes` by its listed size,
// or (named alone) missing or unreadable when asked for its ETag and size, it yields the error result
// ("s3://b/k: 404 NoSuchKey") instead. `objects` may be null only for listed objects.
ReadOutcome read_object_input(const JobInput& input, std::size_t max_file_bytes, const S3Client* objects);

}  // namespace imgpipe
