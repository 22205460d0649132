#include "imgpipe/models/linear_classifier.hpp"

#include "imgpipe/models/linear_svm.hpp"

namespace imgpipe {

LinearClassifier::LinearClassifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LinearClassifier::~LinearClassifier() = default;

std::shared_ptr<const LinearClassifier> LinearClassifier::load(const ModelConfig& config) {
  auto impl = std::make_unique<Impl>();
  const auto file = config.classifier_path();
  try {
    dlib::deserialize(file.string()) >> impl->normalizer >> impl->function;
  } catch (const dlib::error& error) {
    throw ModelError("cannot read the classifier " + file.string() + ": " + error.what());
  }
  const auto dim = static_cast<std::size_t>(impl->function.weights.nc());
  if (dim != static_cast<std::size_t>(config.backbone.feature_dim) ||
      impl->normalizer.means().size() != static_cast<long>(dim)) {
    throw ModelError("classifier of " + config.name + " expects " + std::to_string(dim) +
                     " features but the backbone gives " + std::to_string(config.backbone.feature_dim));
  }
  for (unsigned long label : impl->function.get_labels()) {
    if (label >= config.classes.size()) {
      throw ModelError("classifier of " + config.name + " predicts class " + std::to_string(label) +
                       " but model.json names only " + std::to_string(config.classes.size()) + " classes");
    }
  }
  return std::make_shared<const LinearClassifier>(std::move(impl));
}

Prediction LinearClassifier::predict(std::span<const float> features) const {
  if (features.size() != feature_dim()) {
    throw ModelError("feature vector has " + std::to_string(features.size()) +
                     " values, the classifier expects " + std::to_string(feature_dim()));
  }
  const auto [label, score] = impl_->function.predict(impl_->normalizer(linear_svm::to_sample(features)));
  return {label, score};
}

std::size_t LinearClassifier::feature_dim() const {
  return static_cast<std::size_t>(impl_->function.weights.nc());
}

void LinearClassifier::save(const std::filesystem::path& file) const {
  dlib::serialize(file.string()) << impl_->normalizer << impl_->function;
}

}  // namespace imgpipe
