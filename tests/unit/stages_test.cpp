#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <fstream>

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

TEST_CASE("stages refuse a batch stamped with a version neither loaded nor in the store, image by image",
          "[stages]") {
  FeatureStage feature(ModelStore(test::models_dir()), compute());
  const StageOutput out = feature.process(PixelBatch{{"job", "reply", "fashion", "000000000000"},
                                                     {{"a", 28, 28, 1, std::vector<std::uint8_t>(784, 0)},
                                                      {"b", 28, 28, 1, std::vector<std::uint8_t>(784, 0)}}});
  CHECK_FALSE(out.next.has_value());
  REQUIRE(out.errors.size() == 2);
  for (const auto& error : out.errors)
    CHECK_THAT(error.error, Catch::Contains("fashion@000000000000 is no longer in the store"));
}

TEST_CASE("a model replaced on disk: stamped batches finish on their version, new batches use the new one",
          "[stages]") {
  test::TempDir store_root;
  const fs::path model = store_root.path() / "fashion";
  fs::copy(test::models_dir() / "fashion", model, fs::copy_options::recursive);
  const ModelStore store(store_root.path());
  ClassifyStage classify{store};
  const auto first_version = store.current_version("fashion");
  const std::vector<float> features(store.load("fashion").backbone.feature_dim, 0.5f);
  const FeatureBatch fresh{{"job", "reply", "fashion", ""}, {{"a", features}}};
  const auto before = std::get<ResultBatch>(*classify.process(fresh).next);
  CHECK(before.job.model_version == first_version);
  // A new model.json with its own classifier file, then the old file overwritten in place (as `imgpipe
  // train` does to a model of the same name).
  ModelConfig config = store.load("fashion");
  fs::copy_file(model / "classifier.dat", model / "classifier-2.dat");
  config.classifier->file = "classifier-2.dat";
  config.description = "edited";
  const std::string second_version = store.save(config);
  std::ofstream(model / "classifier.dat", std::ios::binary | std::ios::trunc) << "overwritten";

  // A batch nobody stamped yet: the new version.
  const auto after = std::get<ResultBatch>(*classify.process(fresh).next);
  CHECK(after.job.model_version == second_version);
  CHECK(after.results[0].label == before.results[0].label);
  // A batch stamped with the old version: the old version, loaded here or not.
  const FeatureBatch stamped{{"job", "reply", "fashion", first_version}, {{"a", features}}};
  ClassifyStage started_after{store};  // has loaded nothing: takes the old version from versions/
  for (ClassifyStage* stage : {&classify, &started_after}) {
    const StageOutput out = stage->process(stamped);
    CHECK(out.errors.empty());
    REQUIRE(out.next.has_value());
    const auto old = std::get<ResultBatch>(*out.next);
    CHECK(old.job.model_version == first_version);
    CHECK(old.results[0].label == before.results[0].label);
  }
}

TEST_CASE("a model cache keeps the last N versions of a model loaded, the least recently used out first",
          "[stages]") {
  test::TempDir store_root;
  fs::copy(test::models_dir() / "fashion", store_root.path() / "fashion", fs::copy_options::recursive);
  const ModelStore store(store_root.path());
  std::vector<std::string> loads;
  ModelCache<ModelConfig> cache(
      store, keep_config,
      [&loads](const ModelConfig& config, std::chrono::duration<double>) { loads.push_back(config.version); },
      2);
  std::vector<std::string> versions{store.current_version("fashion")};
  for (int i = 0; i < 3; ++i) {
    ModelConfig config = store.load("fashion");
    config.description = "edit " + std::to_string(i);
    versions.push_back(store.save(config));
  }
  CHECK(cache.get("fashion").config->version == versions[3]);
  CHECK(cache.get("fashion", versions[1]).config->version == versions[1]);
  CHECK(cache.get("fashion", versions[3]).config->version == versions[3]);  // loaded: no load
  CHECK(cache.loaded_versions("fashion") == std::vector<std::string>{versions[3], versions[1]});
  CHECK(cache.get("fashion", versions[2]).config->version == versions[2]);  // drops versions[1]
  CHECK(cache.loaded_versions("fashion") == std::vector<std::string>{versions[2], versions[3]});
  CHECK(loads == std::vector<std::string>{versions[3], versions[1], versions[2]});
  CHECK_THROWS_AS(cache.get("fashion", "0123456789ab"), ModelError);
  CHECK(cache.loaded_versions("nope").empty());
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
