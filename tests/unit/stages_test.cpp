#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>

#include <algorithm>

#include "imgpipe/stages/classify.hpp"
#include "imgpipe/stages/feature.hpp"
#include "imgpipe/training/fashion_mnist.hpp"
#include "imgpipe/training/svm_training.hpp"
#include "imgpipe/transport/local/local_pipeline.hpp"
#include "test_support.hpp"

using namespace imgpipe;
namespace fs = std::filesystem;

namespace {
ComputeOptions compute() {
  ComputeOptions options;
  options.threads = 1;
  options.batch_size = 16;
  return options;
}

// The first `count` Fashion-MNIST test images as PNG bytes, with their class names.
std::vector<std::pair<std::vector<std::uint8_t>, std::string>> fashion_pngs(std::size_t count) {
  const auto split = load_fashion_mnist(kDefaultFashionMnistDir, FashionMnistSplit::test);
  std::vector<std::pair<std::vector<std::uint8_t>, std::string>> out;
  for (std::size_t i = 0; i < count; ++i) {
    const cv::Mat image(28, 28, CV_8UC1, const_cast<std::uint8_t*>(split.image(i)));
    std::vector<std::uint8_t> png;
    REQUIRE(cv::imencode(".png", image, png));
    out.emplace_back(std::move(png), fashion_mnist_class_names()[split.labels[i]]);
  }
  return out;
}
}  // namespace

TEST_CASE("Fashion-MNIST class names are exactly the default model's labels", "[stages]") {
  auto names = fashion_mnist_class_names();
  std::sort(names.begin(), names.end());
  CHECK(names == ModelStore(test::models_dir()).load("fashion").classes);
}

TEST_CASE("local mode classifies real Fashion-MNIST images correctly and gives every image one result",
          "[stages]") {
  const auto images = fashion_pngs(200);
  ImageBatch batch{{"job", "", "fashion", ""}, {}};
  for (std::size_t i = 0; i < images.size(); ++i)
    batch.images.push_back({std::to_string(i), images[i].first});
  batch.images.push_back({"broken", {1, 2, 3}});
  LocalPipeline pipeline(ModelStore(test::models_dir()), compute());
  ResultBatch results{batch.job, "all", {}};
  for (const auto& answer : pipeline.run(batch)) {
    CHECK(answer.job.model_version == ModelStore(test::models_dir()).current_version("fashion"));
    results.results.insert(results.results.end(), answer.results.begin(), answer.results.end());
  }
  REQUIRE(results.results.size() == images.size() + 1);
  std::size_t right = 0;
  for (const auto& result : results.results) {
    if (result.image_id == "broken") {
      CHECK_THAT(result.error, Catch::Contains("not a supported image"));
      continue;
    }
    REQUIRE(result.ok());
    right += result.label == images[std::stoul(result.image_id)].second ? 1 : 0;
  }
  CHECK(static_cast<double>(right) / static_cast<double>(images.size()) >= 0.88);
}

TEST_CASE("the feature stage turns pixels into vectors of the model's feature size", "[stages]") {
  const ModelConfig config = ModelStore(test::models_dir()).load("fashion");
  FeatureStage stage(ModelStore(test::models_dir()), compute());
  PixelBatch batch{{"job", "reply", "fashion", config.version}, {}};
  batch.images.push_back({"a", 28, 28, 1, std::vector<std::uint8_t>(28 * 28, 0)});
  batch.images.push_back({"b", 28, 28, 1, std::vector<std::uint8_t>(28 * 28, 255)});
  batch.images.push_back({"wrong-size", 27, 28, 1, std::vector<std::uint8_t>(27 * 28, 255)});
  const StageOutput out = stage.process(batch);
  REQUIRE(out.next.has_value());
  const auto& features = std::get<FeatureBatch>(*out.next).features;
  REQUIRE(features.size() == 2);
  CHECK(features[0].values.size() == static_cast<std::size_t>(config.backbone.feature_dim));
  CHECK(features[0].values != features[1].values);
  REQUIRE(out.errors.size() == 1);
  CHECK_THAT(out.errors[0].error, Catch::Contains("27x28x1 but model fashion wants 28x28x1"));
}

TEST_CASE("stages refuse a batch made with another version of the model", "[stages]") {
  FeatureStage feature(ModelStore(test::models_dir()), compute());
  const StageOutput out = feature.process(PixelBatch{{"job", "reply", "fashion", "000000000000"},
                                                     {{"a", 28, 28, 1, std::vector<std::uint8_t>(784, 0)}}});
  CHECK_FALSE(out.next.has_value());
  REQUIRE(out.errors.size() == 1);
  CHECK_THAT(out.errors[0].error, Catch::Contains("changed on disk between stages"));
}

TEST_CASE("a model replaced on disk is picked up for the next batch, never mixed into one", "[stages]") {
  test::TempDir store_root;
  fs::copy(test::models_dir() / "fashion", store_root.path() / "fashion", fs::copy_options::recursive);
  ClassifyStage classify{ModelStore(store_root.path())};
  const auto first_version = ModelStore(store_root.path()).current_version("fashion");
  const FeatureBatch batch{
      {"job", "reply", "fashion", ""},
      {{"a", std::vector<float>(ModelStore(store_root.path()).load("fashion").backbone.feature_dim, 0.5f)}}};
  const auto before = std::get<ResultBatch>(*classify.process(batch).next);
  CHECK(before.job.model_version == first_version);
  // Same files, new description: a new model.json, so a new version.
  ModelConfig config = ModelStore(store_root.path()).load("fashion");
  config.description = "edited";
  ModelStore(store_root.path()).save(config);
  const auto after = std::get<ResultBatch>(*classify.process(batch).next);
  CHECK(after.job.model_version != first_version);
  CHECK(after.results[0].label == before.results[0].label);
}

TEST_CASE("the linear SVM learns a separable problem and survives a save/load round trip", "[stages]") {
  std::vector<std::vector<float>> features;
  std::vector<std::size_t> labels;
  for (int i = 0; i < 60; ++i) {
    const auto label = static_cast<std::size_t>(i % 3);
    std::vector<float> vector(4, 0.0f);
    vector[label] = 1.0f + 0.01f * static_cast<float>(i);
    features.push_back(vector);
    labels.push_back(label);
  }
  auto [classifier, report] = train_linear_classifier(features, labels, 3, {});
  CHECK(report.holdout_accuracy == 1.0);
  for (std::size_t i = 0; i < features.size(); ++i)
    CHECK(classifier->predict(features[i]).class_index == labels[i]);
  CHECK_THROWS_AS(classifier->predict(std::vector<float>(5, 0.0f)), ModelError);
  CHECK_THROWS_AS(train_linear_classifier(features, std::vector<std::size_t>(features.size(), 0), 3, {}),
                  std::invalid_argument);
}
