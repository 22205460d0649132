// A job's inputs kept on disk, one line each, and read back in order: what lets a publisher run a job of
// millions of inputs in bounded memory, and `imgpipe submit --resume` find the same inputs again.
//   <file>  JSON Lines; line i is input i (its image id is input_id(i)):
//             ["path as named"]                                   a file named on the command line or in a
//             list
//             ["path", "folder it was found in"]                  a file found by walking a folder
//             ["s3://b/k", "", {"bucket","key","etag","size"}]    an object in a bucket
//           a path that is not valid UTF-8 is {"hex": "<its bytes>"} in place of the string
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "imgpipe/job/inputs.hpp"

namespace imgpipe {

// Appends inputs to a new file (truncating an old one). Throws std::runtime_error naming the file when it
// cannot be written.
class InputFileWriter {
 public:
  explicit InputFileWriter(std::filesystem::path file);
  void add(const JobInput& input);
  // Flushes and syncs: the file is whole on disk when this returns.
  void close();
  std::size_t count() const { return count_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
  std::size_t count_ = 0;
};

// Reads an input file in order. With a `working_dir`, relative paths (and the folders they were found in)
// are made absolute against it, for reading the files from another folder; without, paths stay as named.
class InputFileReader final : public InputSource {
 public:
  explicit InputFileReader(const std::filesystem::path& file, std::filesystem::path working_dir = {});
  // The next input, or nullopt at the end. Throws std::runtime_error naming the file and line for a line
  // that is not an input.
  std::optional<JobInput> next() override;

 private:
  std::filesystem::path path_;
  std::filesystem::path working_dir_;
  std::ifstream in_;
  std::size_t index_ = 0;
};

// Removes the file when it goes out of scope (best effort): the inputs file of a job nobody can resume.
class TemporaryFile {
 public:
  explicit TemporaryFile(std::filesystem::path file) : path_(std::move(file)) {}
  ~TemporaryFile();
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace imgpipe
