// Inside LinearClassifier. For a linear SVM: dlib's normaliser and multiclass linear decision function,
// shared by the loader (models/) and the trainer (training/), which write and read the same classifier.dat;
// for a softmax head: its weights. Nothing else includes this, so dlib's headers stay out of everything that
// merely classifies.
#pragma once

#include <dlib/svm_threaded.h>

#include <span>
#include <vector>

#include "imgpipe/models/linear_classifier.hpp"

namespace imgpipe {

namespace linear_svm {
using Sample = dlib::matrix<double, 0, 1>;
using Kernel = dlib::linear_kernel<Sample>;
using DecisionFunction = dlib::multiclass_linear_decision_function<Kernel, unsigned long>;

inline Sample to_sample(std::span<const float> features) {
  Sample sample(static_cast<long>(features.size()));
  for (std::size_t i = 0; i < features.size(); ++i) sample(static_cast<long>(i)) = features[i];
  return sample;
}
}  // namespace linear_svm

struct LinearClassifier::Impl {
  ClassifierKind kind = ClassifierKind::linear_svm;
  // linear_svm: classifier.dat holds these two, serialised by dlib in this order.
  dlib::vector_normalizer<linear_svm::Sample> normalizer;
  linear_svm::DecisionFunction function;
  // softmax: logits = weights * features + bias; weights row-major, classes x dim.
  std::vector<float> weights;
  std::vector<float> bias;
  std::size_t dim = 0;
};

}  // namespace imgpipe
