// The linear classifier on top of the features: load, predict, save (dlib inside linear_classifier.cpp).
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "imgpipe/models/model_store.hpp"

namespace imgpipe {

struct Prediction {
  std::size_t class_index = 0;
  double score = 0.0;  // the winning class's SVM decision value: higher is more certain, not a probability
};

class LinearClassifier {
 public:
  // dlib's normaliser and decision function, defined in models/internal/imgpipe/models/linear_svm.hpp: only
  // the loader here and the trainer (training/svm_training.hpp) see inside.
  struct Impl;

  static std::shared_ptr<const LinearClassifier> load(const ModelConfig& config);
  explicit LinearClassifier(std::unique_ptr<Impl> impl);
  ~LinearClassifier();
  LinearClassifier(const LinearClassifier&) = delete;
  LinearClassifier& operator=(const LinearClassifier&) = delete;

  Prediction predict(std::span<const float> features) const;
  std::size_t feature_dim() const;
  void save(const std::filesystem::path& file) const;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace imgpipe
