// The linear SVM on top of the features (dlib inside classifier.cpp).
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "imgpipe/model_cache.hpp"
#include "imgpipe/model_store.hpp"
#include "imgpipe/stage.hpp"

namespace imgpipe {

struct Prediction {
  std::size_t class_index = 0;
  double score = 0.0;  // the winning class's SVM decision value: higher is more certain, not a probability
};

struct SvmTrainingOptions {
  std::vector<double> c_values = {1.0, 10.0, 100.0};  // several: the best on a held-out tenth is used
  double holdout_fraction = 0.1;
  unsigned seed = 7;
  int threads = 2;
};

struct SvmTrainingReport {
  double chosen_c = 0.0;
  double holdout_accuracy = 0.0;
  std::vector<std::pair<double, double>> accuracy_by_c;
};

class LinearClassifier {
 public:
  static std::shared_ptr<const LinearClassifier> load(const ModelConfig& config);
  // Trains on labelled features (labels are class indices) and returns the classifier plus what it chose.
  static std::pair<std::shared_ptr<const LinearClassifier>, SvmTrainingReport> train(
      const std::vector<std::vector<float>>& features, const std::vector<std::size_t>& labels,
      std::size_t class_count, const SvmTrainingOptions& options);
  ~LinearClassifier();
  LinearClassifier(const LinearClassifier&) = delete;
  LinearClassifier& operator=(const LinearClassifier&) = delete;

  Prediction predict(std::span<const float> features) const;
  std::size_t feature_dim() const;
  void save(const std::filesystem::path& file) const;

 private:
  struct Impl;
  explicit LinearClassifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ClassifyStage final : public Stage {
 public:
  explicit ClassifyStage(ModelStore store, ModelLoadObserver on_load = {});
  const char* name() const override { return "classify"; }
  BatchKind input_kind() const override { return BatchKind::features; }
  BatchKind output_kind() const override { return BatchKind::results; }
  StageOutput process(const Batch& in) override;

 private:
  ModelCache<LinearClassifier> classifiers_;
};

}  // namespace imgpipe
