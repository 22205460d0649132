#include "imgpipe/classifier.hpp"

#include <dlib/svm_threaded.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "imgpipe/codec.hpp"

namespace imgpipe {
namespace {
using Sample = dlib::matrix<double, 0, 1>;
using Kernel = dlib::linear_kernel<Sample>;
using DecisionFunction = dlib::multiclass_linear_decision_function<Kernel, unsigned long>;

Sample to_sample(std::span<const float> features) {
  Sample sample(static_cast<long>(features.size()));
  for (std::size_t i = 0; i < features.size(); ++i) sample(static_cast<long>(i)) = features[i];
  return sample;
}

DecisionFunction train_svm(const std::vector<Sample>& samples, const std::vector<unsigned long>& labels,
                           double c, int threads) {
  dlib::svm_multiclass_linear_trainer<Kernel, unsigned long> trainer;
  trainer.set_c(c);
  trainer.set_num_threads(static_cast<unsigned long>(std::max(1, threads)));
  trainer.set_epsilon(0.001);
  return trainer.train(samples, labels);
}

double accuracy(const DecisionFunction& function, const std::vector<Sample>& samples,
                const std::vector<unsigned long>& labels) {
  std::size_t right = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) right += function(samples[i]) == labels[i] ? 1 : 0;
  return samples.empty() ? 0.0 : static_cast<double>(right) / static_cast<double>(samples.size());
}
}  // namespace

struct LinearClassifier::Impl {
  dlib::vector_normalizer<Sample> normalizer;
  DecisionFunction function;
};

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
  return std::shared_ptr<const LinearClassifier>(new LinearClassifier(std::move(impl)));
}

std::pair<std::shared_ptr<const LinearClassifier>, SvmTrainingReport> LinearClassifier::train(
    const std::vector<std::vector<float>>& features, const std::vector<std::size_t>& labels,
    std::size_t class_count, const SvmTrainingOptions& options) {
  if (features.size() != labels.size() || features.empty()) {
    throw std::invalid_argument("training needs as many labels as feature vectors, and at least one");
  }
  std::vector<std::size_t> per_class(class_count, 0);
  for (auto label : labels) ++per_class.at(label);
  for (std::size_t c = 0; c < class_count; ++c) {
    if (per_class[c] == 0)
      throw std::invalid_argument("class " + std::to_string(c) + " has no training image");
  }

  auto impl = std::make_unique<Impl>();
  std::vector<Sample> samples;
  samples.reserve(features.size());
  for (const auto& vector : features) samples.push_back(to_sample(vector));
  impl->normalizer.train(samples);
  for (auto& sample : samples) sample = impl->normalizer(sample);
  std::vector<unsigned long> targets(labels.begin(), labels.end());

  // Pick C on a held-out tenth (seeded shuffle), then train on everything with it.
  SvmTrainingReport report;
  if (options.c_values.size() == 1 || samples.size() < 20) {
    report.chosen_c = options.c_values.front();
  } else {
    std::vector<std::size_t> order(samples.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::mt19937 random(options.seed);
    std::shuffle(order.begin(), order.end(), random);
    const auto held = std::max<std::size_t>(
        1, static_cast<std::size_t>(options.holdout_fraction * static_cast<double>(samples.size())));
    std::vector<Sample> fit_x, held_x;
    std::vector<unsigned long> fit_y, held_y;
    for (std::size_t i = 0; i < order.size(); ++i) {
      (i < held ? held_x : fit_x).push_back(samples[order[i]]);
      (i < held ? held_y : fit_y).push_back(targets[order[i]]);
    }
    report.holdout_accuracy = -1.0;
    for (double c : options.c_values) {
      const double score = accuracy(train_svm(fit_x, fit_y, c, options.threads), held_x, held_y);
      report.accuracy_by_c.emplace_back(c, score);
      if (score > report.holdout_accuracy) {
        report.holdout_accuracy = score;
        report.chosen_c = c;
      }
    }
  }
  impl->function = train_svm(samples, targets, report.chosen_c, options.threads);
  return {std::shared_ptr<const LinearClassifier>(new LinearClassifier(std::move(impl))), report};
}

Prediction LinearClassifier::predict(std::span<const float> features) const {
  if (features.size() != feature_dim()) {
    throw ModelError("feature vector has " + std::to_string(features.size()) +
                     " values, the classifier expects " + std::to_string(feature_dim()));
  }
  const auto [label, score] = impl_->function.predict(impl_->normalizer(to_sample(features)));
  return {label, score};
}

std::size_t LinearClassifier::feature_dim() const {
  return static_cast<std::size_t>(impl_->function.weights.nc());
}

void LinearClassifier::save(const std::filesystem::path& file) const {
  dlib::serialize(file.string()) << impl_->normalizer << impl_->function;
}

ClassifyStage::ClassifyStage(ModelStore store, ModelLoadObserver on_load)
    : classifiers_(std::move(store), LinearClassifier::load, std::move(on_load)) {}

StageOutput ClassifyStage::process(const Batch& in) {
  const auto* batch = std::get_if<FeatureBatch>(&in);
  if (batch == nullptr)
    throw MessageError(std::string("classify expects a features batch, got ") + to_string(kind_of(in)));
  StageOutput output;
  const auto loaded = model_for_batch(classifiers_, batch->job, batch->features, output);
  if (!loaded) return output;
  const auto& model = *loaded;
  ResultBatch results{batch->job, "classify", {}};
  results.job.model_version = model.config->version;
  for (const auto& feature : batch->features) {
    try {
      const Prediction prediction = model.loaded->predict(feature.values);
      results.results.push_back(
          {feature.image_id, model.config->classes.at(prediction.class_index), prediction.score, ""});
    } catch (const ModelError& error) {
      output.errors.push_back({feature.image_id, "", 0.0, error.what()});
    }
  }
  if (!results.results.empty()) output.next = std::move(results);
  return output;
}

}  // namespace imgpipe
