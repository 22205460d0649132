// Inside LinearClassifier: dlib's normaliser and multiclass linear decision function. Shared by the loader
// (models/) and the trainer (training/), which write and read the same classifier.dat; nothing else includes
// it, so dlib's headers stay out of everything that merely classifies.
#pragma once

#include <dlib/svm_threaded.h>

#include <span>

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

// classifier.dat holds these two, serialised by dlib in this order.
struct LinearClassifier::Impl {
  dlib::vector_normalizer<linear_svm::Sample> normalizer;
  linear_svm::DecisionFunction function;
};

}  // namespace imgpipe
