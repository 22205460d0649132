// Fits the linear SVM (dlib) that classifies a backbone's features, picking C on a held-out part.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "imgpipe/models/linear_classifier.hpp"

namespace imgpipe {

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

// Trains on labelled features (labels are class indices) and returns the classifier plus what it chose.
// Throws std::invalid_argument when a class has no example or labels and features disagree in number.
std::pair<std::shared_ptr<const LinearClassifier>, SvmTrainingReport> train_linear_classifier(
    const std::vector<std::vector<float>>& features, const std::vector<std::size_t>& labels,
    std::size_t class_count, const SvmTrainingOptions& options);

}  // namespace imgpipe
