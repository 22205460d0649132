// The bad-input corpus: a folder of broken, hostile and unusual inputs, each with the one line a job must
// give it. Built fresh by each spec from real files (OpenCV, Debian's photos, tests/data) and raw bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace imgpipe::test {

struct BadInputCorpus {
  BadInputCorpus();
  TempDir dir{"imgpipe-corpus"};
  std::filesystem::path folder;     // what a job is given as its folder input
  std::filesystem::path named;      // a symlink out of everything, given as a file of its own
  std::filesystem::path elsewhere;  // files outside `folder`, reached only through symlinks
  // Image path as the output line shows it -> the exact error, or "" for "classified (some label)".
  std::map<std::string, std::string> expected;
  std::vector<std::string> arguments() const { return {folder.string(), named.string()}; }
};

// A valid greyscale PNG of width x height zero pixels, deflated row by row: a few hundred KB on disk that
// would take width*height bytes (and more) to decode.
void write_png_bomb(const std::filesystem::path& file, std::uint32_t width, std::uint32_t height);

}  // namespace imgpipe::test
