#include "imgpipe/training/svm_training.hpp"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

#include "imgpipe/models/linear_svm.hpp"

namespace imgpipe {
namespace {
using linear_svm::DecisionFunction;
using linear_svm::Kernel;
using linear_svm::Sample;

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

std::pair<std::shared_ptr<const LinearClassifier>, SvmTrainingReport> train_linear_classifier(
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

  auto impl = std::make_unique<LinearClassifier::Impl>();
  std::vector<Sample> samples;
  samples.reserve(features.size());
  for (const auto& vector : features) samples.push_back(linear_svm::to_sample(vector));
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
  impl->dim = static_cast<std::size_t>(impl->function.weights.nc());
  return {std::make_shared<const LinearClassifier>(std::move(impl)), report};
}

}  // namespace imgpipe
