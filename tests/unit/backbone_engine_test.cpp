// The two feature engines on the default photo model: OpenVINO (the model's choice) gives LibTorch's
// features, the forward batch comes from model.json unless the caller says, and bf16 is there only when asked
// for.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "imgpipe/models/backbone.hpp"
#include "imgpipe/models/model_store.hpp"
#include "test_support.hpp"

using namespace imgpipe;

namespace {

ComputeOptions on(std::optional<Engine> engine, std::optional<Precision> precision = {}) {
  ComputeOptions options;
  options.threads = 2;
  options.engine = engine;
  options.precision = precision;
  return options;
}

// Three images of normalised noise: enough to compare engines, whatever the weights.
std::vector<float> noise(const ModelConfig& config, int count) {
  std::vector<float> values(
      static_cast<std::size_t>(count * config.input.channels * config.input.width * config.input.height));
  std::mt19937 random(7);
  std::normal_distribution<float> normal;
  for (auto& value : values) value = normal(random);
  return values;
}

double max_abs_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  REQUIRE(a.size() == b.size());
  double largest = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (std::size_t j = 0; j < a[i].size(); ++j)
      largest = std::max(largest, double(std::fabs(a[i][j] - b[i][j])));
  }
  return largest;
}

}  // namespace

TEST_CASE("openvino gives the photo model's features to within 1e-4 of libtorch, in any batch split",
          "[engines]") {
  const ModelConfig config = ModelStore(test::models_dir()).load("photos");
  const auto input = noise(config, 3);
  const auto reference = Backbone::load(config, on(Engine::libtorch))->forward_normalised(input, 3);
  const auto openvino = Backbone::load(config, on(std::nullopt));  // the model's own engine
  CHECK(openvino->device() == "openvino CPU f32");
  CHECK(openvino->batch_size() == config.backbone.batch_size);
  REQUIRE(reference.size() == 3);
  CHECK(reference[0].size() == 1280);
  CHECK(max_abs_diff(reference, openvino->forward_normalised(input, 3)) < 1e-4);
  // Batches of 2 then 1 give the same rows as one batch of 3.
  ComputeOptions split = on(Engine::openvino);
  split.batch_size = 2;
  const auto in_pairs = Backbone::load(config, split);
  CHECK(in_pairs->batch_size() == 2);
  CHECK(max_abs_diff(reference, in_pairs->forward_normalised(input, 3)) < 1e-4);
}

TEST_CASE("bf16 runs only when asked for, close to f32, or is refused clearly", "[engines]") {
  const ModelConfig config = ModelStore(test::models_dir()).load("photos");
  const auto input = noise(config, 2);
  CHECK_THROWS_WITH(Backbone::load(config, on(Engine::libtorch, Precision::bf16)),
                    Catch::Contains("offered by the openvino engine only"));
  std::shared_ptr<const Backbone> bf16;
  try {
    bf16 = Backbone::load(config, on(Engine::openvino, Precision::bf16));
  } catch (const ModelError& error) {
    // Only a CPU without bf16 instructions may refuse, and it must say so.
    CHECK_THAT(error.what(), Catch::Contains("no bf16 instructions"));
    return;
  }
  CHECK(bf16->device() == "openvino CPU bf16");
  const auto f32 = Backbone::load(config, on(Engine::openvino))->forward_normalised(input, 2);
  const double diff = max_abs_diff(f32, bf16->forward_normalised(input, 2));
  CHECK(diff > 0.0);  // it really ran in bf16
  CHECK(diff < 1.0);
}

TEST_CASE("a model without an ONNX file refuses the openvino engine by name", "[engines]") {
  const ModelConfig config = ModelStore(test::models_dir()).load("fashion");
  if (config.backbone.onnx) SUCCEED("fashion has an ONNX file; nothing to refuse");
  ModelConfig without = config;
  without.backbone.onnx.reset();
  CHECK_THROWS_WITH(Backbone::load(without, on(Engine::openvino)), Catch::Contains("has no ONNX file"));
}
