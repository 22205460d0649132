// The linear classifier on top of the features: load, predict, save. Two kinds of file hold one
// (ClassifierKind): a dlib linear SVM that `imgpipe train` fits, whose scores are decision values, and a
// network's own softmax head, whose scores are probabilities. dlib stays inside linear_classifier.cpp.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "imgpipe/models/model_store.hpp"

namespace imgpipe {

struct Prediction {
  std::size_t class_index = 0;
  // The winning class's score: for a softmax head its probability; for an SVM its decision value (higher is
  // more certain, not a probability).
  double score = 0.0;
  // The best classes, best first, with their scores; the first is the winner. As many as predict() was asked.
  std::vector<std::pair<std::size_t, double>> best;
};

class LinearClassifier {
 public:
  // What the classifier holds, defined in models/internal/imgpipe/models/linear_svm.hpp: only the loader here
  // and the trainer (training/svm_training.hpp) see inside.
  struct Impl;

  // Reads the model's classifier file, of the kind model.json names. Throws ModelError when it cannot be
  // read or does not fit the backbone's features or the model's classes.
  static std::shared_ptr<const LinearClassifier> load(const ModelConfig& config);
  explicit LinearClassifier(std::unique_ptr<Impl> impl);
  ~LinearClassifier();
  LinearClassifier(const LinearClassifier&) = delete;
  LinearClassifier& operator=(const LinearClassifier&) = delete;

  // The best class and, in `best`, the `top` best ones (at least 1, at most the number of classes).
  Prediction predict(std::span<const float> features, std::size_t top = 1) const;
  std::size_t feature_dim() const;
  ClassifierKind kind() const;
  // Writes a linear SVM as classifier.dat; a softmax head is imported, never written (std::logic_error).
  void save(const std::filesystem::path& file) const;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace imgpipe
