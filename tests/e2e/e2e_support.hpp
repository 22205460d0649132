// A folder of real inputs for end-to-end specs, and the worker cluster to run them through.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "process.hpp"
#include "test_support.hpp"

namespace imgpipe::test {

// Fashion-MNIST test images (true class in the folder name), real photographs, and broken files.
struct InputFolder {
  explicit InputFolder(std::size_t fashion_images_per_class);
  TempDir dir;
  std::map<std::string, std::string> true_class;      // path -> class, for the Fashion-MNIST images
  std::map<std::string, std::string> expected_error;  // path -> part of its error reason
  std::vector<std::string> photos;                    // real photographs (some label, no error)
  std::size_t total() const { return true_class.size() + expected_error.size() + photos.size(); }
};

// One replica per stage (or the fused preprocess+feature node and classify), stopped on destruction.
// `extra_flags` go to every worker (`--models DIR` there replaces the committed store), `role_flags` to the
// one of that role. Metrics are on, as a user's workers have them: with the default port each worker of the
// host takes the next free one.
// The broker URL reaches the workers through `environment` (IMGPIPE_BROKER), never their command line.
class Cluster {
 public:
  explicit Cluster(bool fused = false, const std::vector<std::string>& extra_flags = {},
                   const std::map<std::string, std::vector<std::string>>& role_flags = {},
                   const Environment& environment = broker_environment());
  ChildProcess& worker(const std::string& role);
  std::filesystem::path log_of(const std::string& role) const;

 private:
  TempDir logs_{"imgpipe-cluster"};
  std::map<std::string, std::unique_ptr<ChildProcess>> workers_;
};

// Parses JSON Lines output into path -> line.
std::map<std::string, nlohmann::json> lines_by_image(const std::string& jsonl);

// Exactly one line per input of `inputs`: the broken files' with their errors, every other image labelled.
void check_every_image_answered(const InputFolder& inputs,
                                const std::map<std::string, nlohmann::json>& lines);

}  // namespace imgpipe::test
