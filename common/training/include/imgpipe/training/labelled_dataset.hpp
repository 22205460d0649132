// A labelled image folder: one sub-folder per class (the usual image-folder convention).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "imgpipe/job/inputs.hpp"

namespace imgpipe {

struct LabelledDataset {
  std::vector<std::string> classes;  // sub-folder names, sorted
  std::vector<JobInput> inputs;
  std::vector<std::size_t> labels;  // index into classes, one per input
};

// Throws UsageError when the folder is missing or has fewer than two non-empty class folders.
LabelledDataset load_labelled_folder(const std::filesystem::path& root);

}  // namespace imgpipe
