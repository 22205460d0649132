#include "imgpipe/models/linear_classifier.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "imgpipe/models/linear_svm.hpp"

namespace imgpipe {
namespace {

void load_linear_svm(const ModelConfig& config, LinearClassifier::Impl& impl) {
  const auto file = config.classifier_path();
  try {
    dlib::deserialize(file.string()) >> impl.normalizer >> impl.function;
  } catch (const dlib::error& error) {
    throw ModelError("cannot read the classifier " + file.string() + ": " + error.what());
  }
  impl.dim = static_cast<std::size_t>(impl.function.weights.nc());
  if (impl.normalizer.means().size() != static_cast<long>(impl.dim)) {
    throw ModelError("classifier " + file.string() + " normalises " +
                     std::to_string(impl.normalizer.means().size()) + " features but weighs " +
                     std::to_string(impl.dim));
  }
  for (unsigned long label : impl.function.get_labels()) {
    if (label >= config.classes.size()) {
      throw ModelError("classifier of " + config.name + " predicts class " + std::to_string(label) +
                       " but model.json names only " + std::to_string(config.classes.size()) + " classes");
    }
  }
}

// head.f32: the classes x dim weights, row-major, then the classes biases, little-endian float32. The model's
// classes and its backbone's feature_dim say how many; the file's size must agree exactly.
void load_softmax(const ModelConfig& config, LinearClassifier::Impl& impl) {
  const auto file = config.classifier_path();
  const std::size_t classes = config.classes.size();
  impl.dim = static_cast<std::size_t>(std::max(config.backbone.feature_dim, 0));
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ModelError("cannot read the classifier " + file.string());
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t expected = (classes * impl.dim + classes) * sizeof(float);
  if (impl.dim == 0 || bytes.size() != expected) {
    throw ModelError("softmax head " + file.string() + " has " + std::to_string(bytes.size()) + " bytes; " +
                     std::to_string(classes) + " classes x " + std::to_string(impl.dim) +
                     " features (model.json) need " + std::to_string(expected));
  }
  static_assert(std::endian::native == std::endian::little, "head.f32 is little-endian float32");
  impl.weights.resize(classes * impl.dim);
  impl.bias.resize(classes);
  std::memcpy(impl.weights.data(), bytes.data(), impl.weights.size() * sizeof(float));
  std::memcpy(impl.bias.data(), bytes.data() + impl.weights.size() * sizeof(float), classes * sizeof(float));
  if (!std::all_of(impl.weights.begin(), impl.weights.end(), [](float w) { return std::isfinite(w); }) ||
      !std::all_of(impl.bias.begin(), impl.bias.end(), [](float b) { return std::isfinite(b); })) {
    throw ModelError("softmax head " + file.string() + " holds values that are not finite numbers");
  }
}

// Every class's score, by class index.
std::vector<double> svm_scores(const LinearClassifier::Impl& impl, std::span<const float> features) {
  // dlib's own predict() is the argmax of weights * x - b over its labels; all of them are wanted here.
  const linear_svm::Sample x = impl.normalizer(linear_svm::to_sample(features));
  const auto labels = impl.function.get_labels();
  std::vector<double> scores(labels.size() == 0 ? 0 : *std::max_element(labels.begin(), labels.end()) + 1,
                             -std::numeric_limits<double>::infinity());
  for (long row = 0; row < impl.function.weights.nr(); ++row) {
    scores[labels[static_cast<std::size_t>(row)]] =
        dlib::dot(dlib::rowm(impl.function.weights, row), x) - impl.function.b(row);
  }
  return scores;
}

std::vector<double> softmax_probabilities(const LinearClassifier::Impl& impl,
                                          std::span<const float> features) {
  const std::size_t classes = impl.bias.size();
  std::vector<double> logits(classes);
  for (std::size_t c = 0; c < classes; ++c) {
    const float* row = impl.weights.data() + c * impl.dim;
    double sum = impl.bias[c];
    for (std::size_t i = 0; i < impl.dim; ++i) sum += static_cast<double>(row[i]) * features[i];
    logits[c] = sum;
  }
  // Shifted by the largest logit, so exp() cannot overflow.
  const double largest = *std::max_element(logits.begin(), logits.end());
  double total = 0.0;
  for (double& logit : logits) total += (logit = std::exp(logit - largest));
  for (double& logit : logits) logit /= total;
  return logits;
}

}  // namespace

LinearClassifier::LinearClassifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LinearClassifier::~LinearClassifier() = default;

std::shared_ptr<const LinearClassifier> LinearClassifier::load(const ModelConfig& config) {
  if (!config.classifier) config.classifier_path();  // throws the "no classifier" error
  auto impl = std::make_unique<Impl>();
  impl->kind = config.classifier->kind;
  if (impl->kind == ClassifierKind::softmax) {
    load_softmax(config, *impl);
  } else {
    load_linear_svm(config, *impl);
  }
  if (impl->dim != static_cast<std::size_t>(config.backbone.feature_dim)) {
    throw ModelError("classifier of " + config.name + " expects " + std::to_string(impl->dim) +
                     " features but the backbone gives " + std::to_string(config.backbone.feature_dim));
  }
  return std::make_shared<const LinearClassifier>(std::move(impl));
}

Prediction LinearClassifier::predict(std::span<const float> features, std::size_t top) const {
  if (features.size() != feature_dim()) {
    throw ModelError("feature vector has " + std::to_string(features.size()) +
                     " values, the classifier expects " + std::to_string(feature_dim()));
  }
  const std::vector<double> scores = impl_->kind == ClassifierKind::softmax
                                         ? softmax_probabilities(*impl_, features)
                                         : svm_scores(*impl_, features);
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  const std::size_t wanted = std::clamp<std::size_t>(top, 1, order.size());
  // Ties go to the lower class index, as dlib's argmax does.
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(wanted), order.end(),
                    [&](std::size_t a, std::size_t b) {
                      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
                    });
  Prediction prediction{order.front(), scores[order.front()], {}};
  for (std::size_t i = 0; i < wanted; ++i) prediction.best.emplace_back(order[i], scores[order[i]]);
  return prediction;
}

std::size_t LinearClassifier::feature_dim() const {
  return impl_->dim;
}

ClassifierKind LinearClassifier::kind() const {
  return impl_->kind;
}

void LinearClassifier::save(const std::filesystem::path& file) const {
  if (impl_->kind != ClassifierKind::linear_svm) {
    throw std::logic_error("a softmax head is imported with its network, not written by imgpipe");
  }
  dlib::serialize(file.string()) << impl_->normalizer << impl_->function;
}

}  // namespace imgpipe
