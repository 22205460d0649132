// Models come only from the store, by a plain name, and only as the bytes model.json's sha256 vouches for.
// The model name in a message is input from the network: a path there must not reach the file system.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "imgpipe/models/model_store.hpp"
#include "imgpipe/stages/classify.hpp"
#include "imgpipe/stages/feature.hpp"
#include "imgpipe/stages/preprocess.hpp"
#include "test_support.hpp"

using namespace imgpipe;
namespace fs = std::filesystem;

namespace {

ComputeOptions one_thread() {
  ComputeOptions options;
  options.threads = 1;
  options.batch_size = 16;
  return options;
}

// store/ holds nothing; beside it lies a complete, valid model, and the real store has one too: a stage that
// joined the message's model name to its store path would find and load them.
struct StoreWithModelBeside {
  test::TempDir outer;
  fs::path store = outer.path() / "store";
  StoreWithModelBeside() {
    fs::create_directories(store);
    fs::copy(test::models_dir() / "fashion", outer.path() / "fashion", fs::copy_options::recursive);
  }
  std::vector<std::string> path_like_names() const {
    return {"../fashion",
            (outer.path() / "fashion").string(),
            (test::models_dir() / "fashion").string(),
            "fashion/../../fashion",
            "..",
            "."};
  }
};

void check_refused(const StageOutput& out, std::size_t images, const std::string& model) {
  INFO("model name in the message: " << model);
  CHECK_FALSE(out.next.has_value());
  CHECK(out.model_version.empty());
  REQUIRE(out.errors.size() == images);
  for (const auto& error : out.errors) CHECK_THAT(error.error, Catch::Contains("not a valid model name"));
}

}  // namespace

TEST_CASE("the store refuses path-like model names, absolute or relative, although a model lies there",
          "[models][security]") {
  const StoreWithModelBeside setup;
  const ModelStore store(setup.store);
  for (const auto& name : setup.path_like_names()) {
    INFO(name);
    CHECK_FALSE(is_valid_model_name(name));
    CHECK_THROWS_AS(store.load(name), ModelError);
    CHECK_THROWS_WITH(store.load(name), Catch::Contains("not a valid model name"));
  }
}

TEST_CASE("every stage answers a message naming a path-like model with a per-image error, loading nothing",
          "[models][security][stages]") {
  const StoreWithModelBeside setup;
  std::size_t loads = 0;
  const ModelLoadObserver count_loads = [&loads](const ModelConfig&, std::chrono::duration<double>) {
    ++loads;
  };
  PreprocessStage preprocess(ModelStore(setup.store), {}, count_loads);
  FeatureStage feature(ModelStore(setup.store), one_thread(), count_loads);
  ClassifyStage classify(ModelStore(setup.store), count_loads);
  const auto png = test::read_file(test::skimage_photo("coffee.png"));
  for (const auto& model : setup.path_like_names()) {
    const JobRef job{"job", "reply", model, ""};
    check_refused(preprocess.process(ImageBatch{job, {{"a", png}, {"b", png}}}), 2, model);
    check_refused(feature.process(PixelBatch{job, {{"a", 28, 28, 1, std::vector<std::uint8_t>(784, 0)}}}), 1,
                  model);
    check_refused(classify.process(FeatureBatch{job, {{"a", std::vector<float>(64, 0.5f)}}}), 1, model);
  }
  CHECK(loads == 0);
}

TEST_CASE("a backbone file changed on disk is refused like a changed classifier", "[models][security]") {
  test::TempDir root;
  fs::copy(test::models_dir() / "fashion", root.path() / "fashion", fs::copy_options::recursive);
  const ModelStore store(root.path());
  REQUIRE_NOTHROW(store.load("fashion"));
  std::ofstream(root.path() / "fashion" / "backbone.pt", std::ios::binary | std::ios::app) << '\0';
  CHECK_THROWS_AS(store.load("fashion"), ModelError);
  CHECK_THROWS_WITH(store.load("fashion"), Catch::Contains("backbone file") &&
                                               Catch::Contains("does not match model.json") &&
                                               Catch::Contains("sha256"));
  // A stage turns it into a clear per-image error rather than running the tampered weights.
  FeatureStage feature(ModelStore(root.path()), one_thread());
  const StageOutput out = feature.process(
      PixelBatch{{"job", "reply", "fashion", ""}, {{"a", 28, 28, 1, std::vector<std::uint8_t>(784, 0)}}});
  CHECK_FALSE(out.next.has_value());
  REQUIRE(out.errors.size() == 1);
  CHECK_THAT(out.errors[0].error, Catch::Contains("does not match model.json"));
}
