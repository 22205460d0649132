#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>

#include <cmath>

#include "e2e_support.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/training/fashion_mnist.hpp"
#include "process.hpp"
#include "test_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {
// DIR/<class>/<n>.png for the given classes (three by default), `count` images each, from the given split.
void write_labelled(const fs::path& dir, FashionMnistSplit split, std::size_t count,
                    const std::vector<int>& classes = {1, 7, 8}) {  // Trouser, Sneaker, Bag
  const auto images = load_fashion_mnist(kDefaultFashionMnistDir, split);
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

// The share of result lines whose label is the name of the image's folder (its true class).
double accuracy(const std::map<std::string, nlohmann::json>& lines) {
  std::size_t right = 0;
  for (const auto& [image, line] : lines)
    right += line["label"] == fs::path(image).parent_path().filename().string() ? 1 : 0;
  return static_cast<double>(right) / static_cast<double>(lines.size());
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

TEST_CASE(
    "a model trained on the photo backbone's features classifies held-out images through the cluster "
    "and locally",
    "[e2e][train][photos]") {
  TempDir work;
  // The user's store holds the default photos model (linked, not copied) and receives the new one.
  const fs::path store = work.path() / "models";
  fs::create_directories(store);
  fs::create_directory_symlink(models_dir() / "photos", store / "photos");
  const fs::path train = work.path() / "train";
  const fs::path held_out = work.path() / "held-out";
  // Four kinds of clothing from Fashion-MNIST, 30 training images each from its training split and 10
  // held-out ones each from its test split: 28x28 grey pictures, nothing like the photos ImageNet taught the
  // backbone, and pairs of classes alike (T-shirt/top and pullover, sandal and sneaker).
  const std::vector<int> classes = {0, 2, 5, 7};  // T-shirt_top, Pullover, Sandal, Sneaker
  write_labelled(train, FashionMnistSplit::train, 30, classes);
  write_labelled(held_out, FashionMnistSplit::test, 10, classes);
  const auto tool = worker_binary("imgpipe");

  const auto trained = run_tool(tool, {"train", "--models", store.string(), "--quiet", "--model",
                                       "my-categories", "--backbone", "photos", train.string()});
  INFO(trained.out << trained.err);
  REQUIRE(trained.exit_code == 0);
  CHECK_THAT(trained.out, Catch::Contains("images: 120 used, 0 skipped; classes: 4"));
  const ModelConfig photos = ModelStore(models_dir()).load("photos");
  const ModelConfig model = ModelStore(store).load("my-categories");
  CHECK(model.classes == std::vector<std::string>{"Pullover", "Sandal", "Sneaker", "T-shirt_top"});
  REQUIRE(model.classifier.has_value());
  CHECK(model.classifier->kind == ClassifierKind::linear_svm);  // a dlib SVM, not the ImageNet head
  CHECK(model.classifier->file == "classifier.dat");
  CHECK(model.classifier->backbone_sha256 == photos.backbone.sha256);
  CHECK(model.backbone.feature_dim == 1280);
  CHECK(model.input.width == 224);  // the backbone's own input contract, carried over
  CHECK(model.input.interpolation == Interpolation::antialiased_linear);
  CHECK(model.input.crop == photos.input.crop);

  const fs::path local_output = work.path() / "local.jsonl";
  const auto local = run_tool(tool, {"run", "--models", store.string(), "--model", "my-categories", "--quiet",
                                     "--threads", "2", "-o", local_output.string(), held_out.string()});
  INFO(local.err);
  REQUIRE(local.exit_code == 0);
  const auto local_lines = lines_by_image(read_text_file(local_output));
  REQUIRE(local_lines.size() == 40);

  const fs::path broker_output = work.path() / "broker.jsonl";
  {
    Cluster cluster(false, {"--models", store.string()});
    const auto submitted =
        run_tool(tool,
                 {"submit", "--models", store.string(), "--model", "my-categories", "--quiet", "--top-k", "2",
                  "--idle-timeout", "120", "-o", broker_output.string(), held_out.string()},
                 300, broker_environment());
    INFO(submitted.err);
    REQUIRE(submitted.exit_code == 0);
  }
  const auto broker_lines = lines_by_image(read_text_file(broker_output));
  REQUIRE(broker_lines.size() == 40);

  // Measured: 38 of 40 right (95%) in both modes, on each of three runs; the two misses are sandals taken
  // for sneakers. 85% leaves room for four more; guessing would get 25%.
  CAPTURE(accuracy(local_lines), accuracy(broker_lines));
  CHECK(accuracy(local_lines) >= 0.85);
  CHECK(accuracy(broker_lines) >= 0.85);
  for (const auto& [image, line] : broker_lines) {
    INFO(image);
    CHECK_THAT(line["model"].get<std::string>(), Catch::Equals("my-categories@" + model.version));
    // --top-k travelled with the job through every worker: the two best of the four classes, best first.
    REQUIRE(line.contains("top"));
    REQUIRE(line["top"].size() == 2);
    CHECK(line["top"][0] == nlohmann::json::array({line["label"], line["score"]}));
    CHECK(line["top"][1][1].get<double>() <= line["score"].get<double>());
    CHECK_FALSE(local_lines.at(image).contains("top"));  // asked for no list
    // The same stages on the same bytes: the same answer in both modes.
    CHECK(line["label"] == local_lines.at(image)["label"]);
    CHECK(std::abs(line["score"].get<double>() - local_lines.at(image)["score"].get<double>()) < 1e-4);
  }
}
