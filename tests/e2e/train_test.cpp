#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>

#include "imgpipe/models/model_store.hpp"
#include "imgpipe/training/fashion_mnist.hpp"
#include "process.hpp"
#include "test_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {
// DIR/<class>/<n>.png for three classes, `count` images each, from the given split.
void write_labelled(const fs::path& dir, FashionMnistSplit split, std::size_t count) {
  const auto images = load_fashion_mnist(kDefaultFashionMnistDir, split);
  const std::vector<int> classes = {1, 7, 8};  // Trouser, Sneaker, Bag
  for (int label : classes) {
    const fs::path class_dir = dir / fashion_mnist_class_names()[static_cast<std::size_t>(label)];
    fs::create_directories(class_dir);
    std::size_t written = 0;
    for (std::size_t i = 0; i < images.size() && written < count; ++i) {
      if (images.labels[i] != label) continue;
      const cv::Mat image(28, 28, CV_8UC1, const_cast<std::uint8_t*>(images.image(i)));
      REQUIRE(cv::imwrite((class_dir / (std::to_string(i) + ".png")).string(), image));
      ++written;
    }
  }
}
}  // namespace

TEST_CASE("a user imports a TorchScript backbone, trains a model on a labelled folder and evaluates it",
          "[e2e][train]") {
  TempDir work;
  const fs::path store = work.path() / "models";
  const fs::path train = work.path() / "train";
  const fs::path test_dir = work.path() / "test";
  write_labelled(train, FashionMnistSplit::train, 40);
  write_labelled(test_dir, FashionMnistSplit::test, 30);
  const auto tool = worker_binary("imgpipe");

  // The default model's backbone stands in for a user's own TorchScript export.
  const auto added = run_tool(tool, {"add-backbone",
                                     "--models",
                                     store.string(),
                                     "--name",
                                     "mine",
                                     "--width",
                                     "28",
                                     "--height",
                                     "28",
                                     "--channels",
                                     "1",
                                     "--resize",
                                     "stretch",
                                     "--interpolation",
                                     "area",
                                     "--mean",
                                     "0.2860",
                                     "--std",
                                     "0.3530",
                                     (models_dir() / "fashion" / "backbone.pt").string()});
  INFO(added.err);
  REQUIRE(added.exit_code == 0);
  const ModelConfig backbone = ModelStore(store).load("mine");
  CHECK_FALSE(backbone.classifier.has_value());
  CHECK(backbone.backbone.feature_dim == ModelStore(models_dir()).load("fashion").backbone.feature_dim);

  const auto trained = run_tool(tool, {"train", "--models", store.string(), "--quiet", "--model", "three",
                                       "--backbone", "mine", train.string()});
  INFO(trained.out << trained.err);
  REQUIRE(trained.exit_code == 0);
  const ModelConfig model = ModelStore(store).load("three");
  CHECK(model.classes == std::vector<std::string>{"Bag", "Sneaker", "Trouser"});
  CHECK(model.classifier->backbone_sha256 == backbone.backbone.sha256);

  const auto evaluated =
      run_tool(tool, {"eval", "--models", store.string(), "--quiet", "--model", "three", test_dir.string()});
  INFO(evaluated.out << evaluated.err);
  REQUIRE(evaluated.exit_code == 0);
  CHECK_THAT(evaluated.out, Catch::Contains("images: 90") && Catch::Contains("confusion matrix"));
  const auto at = evaluated.out.find("accuracy: ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(evaluated.out.substr(at + 10)) >= 95.0);

  // A backbone-only entry cannot classify: a clear error per image, not a crash.
  const auto no_classifier =
      run_tool(tool, {"run", "--models", store.string(), "--quiet", "--model", "mine", test_dir.string()});
  CHECK(no_classifier.exit_code == 3);
  CHECK_THAT(no_classifier.out, Catch::Contains("has no classifier"));
}
