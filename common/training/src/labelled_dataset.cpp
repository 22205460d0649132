#include "imgpipe/training/labelled_dataset.hpp"

#include <algorithm>

namespace imgpipe {
namespace fs = std::filesystem;

LabelledDataset load_labelled_folder(const fs::path& root) {
  std::error_code error;
  if (!fs::is_directory(root, error)) throw UsageError("dataset folder " + root.string() + " does not exist");
  std::vector<fs::path> class_dirs;
  for (const auto& entry : fs::directory_iterator(root, error)) {
    if (entry.is_directory() && entry.path().filename().string().front() != '.')
      class_dirs.push_back(entry.path());
  }
  std::sort(class_dirs.begin(), class_dirs.end());
  LabelledDataset dataset;
  for (const auto& dir : class_dirs) {
    const auto found = collect_inputs({dir.string()});
    if (found.empty()) continue;
    const std::size_t label = dataset.classes.size();
    dataset.classes.push_back(dir.filename().string());
    for (const auto& input : found) {
      dataset.inputs.push_back(input);  // keeps the folder confinement; the id is renumbered below
      dataset.labels.push_back(label);
    }
  }
  if (dataset.classes.size() < 2) {
    throw UsageError("dataset folder " + root.string() +
                     " needs at least two class sub-folders with images (one sub-folder per class)");
  }
  for (std::size_t i = 0; i < dataset.inputs.size(); ++i) dataset.inputs[i].image_id = input_id(i);
  return dataset;
}

}  // namespace imgpipe
