// The default model's classifier: EfficientNet-Lite0's own ImageNet head (classifier kind "softmax"), whose
// scores are probabilities, on the features of real photos; and what a damaged head or model.json gives.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

#include "imgpipe/models/linear_classifier.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/transport/local/local_pipeline.hpp"
#include "test_support.hpp"

using namespace imgpipe;
namespace fs = std::filesystem;

namespace {

ComputeOptions compute() {
  ComputeOptions options;
  options.threads = 1;
  options.batch_size = 8;
  return options;
}

// The photos model's 1280 pooled features of a real photo, through the preprocess and feature stages.
std::vector<float> features_of(const fs::path& photo) {
  LocalPipeline pipeline(ModelStore(test::models_dir()), compute());
  std::vector<ImageResult> errors;
  const FeatureBatch batch =
      pipeline.features(ImageBatch{{"job", "", "photos", ""}, {{"photo", test::read_file(photo)}}}, errors);
  INFO((errors.empty() ? "" : errors[0].error));
  REQUIRE(batch.features.size() == 1);
  return batch.features[0].values;
}

double sum_of_scores(const Prediction& prediction) {
  return std::accumulate(prediction.best.begin(), prediction.best.end(), 0.0,
                         [](double sum, const auto& entry) { return sum + entry.second; });
}

void check_best_first(const Prediction& prediction) {
  CHECK(std::is_sorted(prediction.best.begin(), prediction.best.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; }));
}

// models/photos copied into `root` so that a test may damage it (the 19 MB backbone linked, not copied).
fs::path copy_photos_model(const fs::path& root) {
  const fs::path from = test::models_dir() / "photos";
  const fs::path to = root / "photos";
  fs::create_directories(to);
  fs::create_symlink(from / "backbone.pt", to / "backbone.pt");
  fs::create_symlink(from / "backbone.onnx", to / "backbone.onnx");
  fs::copy_file(from / "head.f32", to / "head.f32");
  fs::copy_file(from / "model.json", to / "model.json");
  return to;
}

void rewrite_json(const fs::path& file, const std::function<void(nlohmann::json&)>& change) {
  nlohmann::json json = nlohmann::json::parse(std::ifstream(file));
  change(json);
  std::ofstream(file) << json.dump(2);
}

std::string load_error(const fs::path& root) {
  try {
    LinearClassifier::load(ModelStore(root).load("photos"));
  } catch (const ModelError& error) {
    return error.what();
  }
  return "(loaded without error)";
}

}  // namespace

TEST_CASE("the photos model's head gives probabilities: every class's sum to 1, best first",
          "[models][softmax]") {
  const ModelConfig config = ModelStore(test::models_dir()).load("photos");
  REQUIRE(config.classifier->kind == ClassifierKind::softmax);
  const auto head = LinearClassifier::load(config);
  CHECK(head->kind() == ClassifierKind::softmax);
  REQUIRE(head->feature_dim() == 1280);
  const std::vector<float> squirrel = features_of(test::opencv_photo("squirrel_cls.jpg"));

  const Prediction all = head->predict(squirrel, 1000);
  REQUIRE(all.best.size() == 1000);
  CHECK(sum_of_scores(all) == Approx(1.0).margin(1e-9));
  CHECK(all.best.back().second > 0.0);  // best first, so the last is the least
  CHECK(all.best.front().second < 1.0);
  check_best_first(all);

  const Prediction top5 = head->predict(squirrel, 5);
  REQUIRE(top5.best.size() == 5);
  check_best_first(top5);
  CHECK(config.classes.at(top5.class_index) == "fox squirrel");
  CHECK(top5.best.front().first == top5.class_index);
  CHECK(top5.best.front().second == top5.score);
  CHECK(top5.score == Approx(0.885).margin(0.01));  // the PyTorch reference says 0.885048 (docs/model.md)
  for (std::size_t i = 0; i < 5; ++i) CHECK(top5.best[i] == all.best[i]);  // the same five, in order

  // Asked for none or more than there are: the winner alone, or every class.
  CHECK(head->predict(squirrel, 0).best.size() == 1);
  CHECK(head->predict(squirrel, 5000).best.size() == 1000);
  // Other features, other answer: not one fixed output.
  CHECK(config.classes.at(head->predict(features_of(test::opencv_photo("baboon.jpg"))).class_index) ==
        "baboon");
}

TEST_CASE("softmax probabilities stay finite and sum to 1 for any features, however large",
          "[models][softmax]") {
  const auto head = LinearClassifier::load(ModelStore(test::models_dir()).load("photos"));
  std::mt19937 random(7);
  for (const float scale : {0.0f, 1.0f, 10.0f, 1000.0f, 1e6f}) {
    CAPTURE(scale);
    std::vector<float> features(1280, 0.0f);
    if (scale > 0.0f) {
      std::normal_distribution<float> value(0.0f, scale);
      for (float& f : features) f = std::abs(value(random));  // pooled ReLU6 features are >= 0
    }
    const Prediction prediction = head->predict(features, 1000);
    CHECK(sum_of_scores(prediction) == Approx(1.0).margin(1e-9));
    CHECK(std::isfinite(prediction.score));
    check_best_first(prediction);
    CHECK(head->predict(features, 3).best.size() == 3);
  }
  CHECK_THROWS_WITH(head->predict(std::vector<float>(256, 0.0f)),
                    Catch::Contains("feature vector has 256 values, the classifier expects 1280"));
}

TEST_CASE("a job asking for top_k gets that many labels per image from the classify stage",
          "[models][softmax][top-k]") {
  LocalPipeline pipeline(ModelStore(test::models_dir()), compute());
  ImageBatch batch{{"job", "", "photos", ""},
                   {{"squirrel", test::read_file(test::opencv_photo("squirrel_cls.jpg"))}}};
  batch.job.top_k = 3;
  std::vector<ImageResult> results;
  for (const auto& answer : pipeline.run(batch))
    results.insert(results.end(), answer.results.begin(), answer.results.end());
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].ok());
  CHECK(results[0].label == "fox squirrel");
  REQUIRE(results[0].top.size() == 3);
  CHECK(results[0].top[0] == LabelScore{results[0].label, results[0].score});
  CHECK(results[0].top[0].score >= results[0].top[1].score);
  CHECK(results[0].top[1].score >= results[0].top[2].score);

  batch.job.top_k = 1;  // the default: the winner alone, no list
  for (const auto& answer : pipeline.run(batch))
    for (const auto& result : answer.results) CHECK(result.top.empty());
}

TEST_CASE("a softmax head that does not fit model.json is refused with a ModelError that says why",
          "[models][softmax]") {
  test::TempDir root;
  const fs::path model = copy_photos_model(root.path());
  REQUIRE(load_error(root.path()) == "(loaded without error)");
  const auto pin_head = [&](nlohmann::json& json) {
    json["classifier"]["sha256"] = sha256_hex_of_file(model / "head.f32");
  };

  SECTION("a head file one float short") {
    fs::resize_file(model / "head.f32", fs::file_size(model / "head.f32") - 4);
    rewrite_json(model / "model.json", pin_head);  // pinned, so it is the size that is refused
    CHECK_THAT(load_error(root.path()),
               Catch::Contains("softmax head") && Catch::Contains("has 5123996 bytes") &&
                   Catch::Contains("1000 classes x 1280 features (model.json) need 5124000"));
  }
  SECTION("model.json naming one class fewer than the head holds") {
    rewrite_json(model / "model.json", [](nlohmann::json& json) { json["classes"].erase(999); });
    CHECK_THAT(load_error(root.path()),
               Catch::Contains("has 5124000 bytes") &&
                   Catch::Contains("999 classes x 1280 features (model.json) need 5118876"));
  }
  SECTION("a head holding values that are not numbers") {
    std::fstream head(model / "head.f32", std::ios::in | std::ios::out | std::ios::binary);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    head.seekp(4 * 1280 * 17);
    head.write(reinterpret_cast<const char*>(&nan), sizeof nan);
    head.close();
    rewrite_json(model / "model.json", pin_head);
    CHECK_THAT(load_error(root.path()), Catch::Contains("holds values that are not finite numbers"));
  }
  SECTION("an unknown classifier kind") {
    rewrite_json(model / "model.json", [](nlohmann::json& json) { json["classifier"]["kind"] = "logistic"; });
    CHECK_THAT(load_error(root.path()),
               Catch::Contains("classifier: kind must be \"linear-svm\" or \"softmax\", not \"logistic\""));
  }
}
