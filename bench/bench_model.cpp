// imgpipe-bench: the figures that need no broker, for one model and a folder of images:
// bare backbone forward throughput (already-normalised tensors, no decode, no messages) on the engine,
// precision and batch size asked for, how far its features are from LibTorch's f32 reference on the same
// tensors, and the bytes each edge of the pipeline carries per image. bench/run adds local-mode and
// broker-mode throughput.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <random>

#include "imgpipe/job/batching.hpp"
#include "imgpipe/messages/codec.hpp"
#include "imgpipe/models/backbone.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/stages/classify.hpp"
#include "imgpipe/stages/feature.hpp"
#include "imgpipe/stages/preprocess.hpp"

using namespace imgpipe;

int main(int argc, char** argv) {
  CLI::App app("imgpipe-bench: bare backbone throughput and bytes on the wire per image", "imgpipe-bench");
  std::string models = default_model_dir();
  std::string model = "fashion";
  std::vector<std::string> inputs;
  int batch_size = 0;
  int threads = 0;
  double seconds = 10.0;
  std::string engine;
  std::string precision;
  app.add_option("--models", models)->envname("IMGPIPE_MODELS");
  app.add_option("--model", model)->capture_default_str();
  app.add_option("--batch-size", batch_size, "Images per forward pass (0 = the model's own)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--seconds", seconds, "How long to time the bare forward pass")->capture_default_str();
  app.add_option("--engine", engine, "libtorch or openvino (default: the model's own)")
      ->check(CLI::IsMember({"libtorch", "openvino"}));
  app.add_option("--precision", precision, "f32 or bf16 (default: the model's own)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("INPUT", inputs, "Images used for the wire-size figures (none: no wire figures)");
  CLI11_PARSE(app, argc, argv);

  const ModelStore store(models);
  const ModelConfig config = store.load(model);
  ComputeOptions compute;
  compute.threads = threads;
  compute.batch_size = batch_size;
  if (!engine.empty()) compute.engine = engine_from_string(engine);
  if (!precision.empty()) compute.precision = precision_from_string(precision);
  configure_compute(compute);
  const auto backbone = Backbone::load(config, compute);
  batch_size = backbone->batch_size();  // what was asked for, else the model's own

  // Bare forward: random normalised input, whole batches, after one warm-up batch.
  const auto per_image =
      static_cast<std::size_t>(config.input.channels * config.input.width * config.input.height);
  std::vector<float> batch(per_image * static_cast<std::size_t>(batch_size));
  std::mt19937 random(1);
  std::normal_distribution<float> normal;
  for (auto& value : batch) value = normal(random);
  backbone->forward_normalised(batch, batch_size);
  std::size_t images = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  while (elapsed < seconds) {
    backbone->forward_normalised(batch, batch_size);
    images += static_cast<std::size_t>(batch_size);
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  // Distance from the reference: LibTorch in f32 on the same tensors (at most 8 images of the batch).
  const int compared = std::min(batch_size, 8);
  ComputeOptions reference_options = compute;
  reference_options.engine = Engine::libtorch;
  reference_options.precision = Precision::f32;
  reference_options.allow_cuda = false;
  const std::vector<float> sample(batch.begin(),
                                  batch.begin() + static_cast<std::ptrdiff_t>(per_image * compared));
  const auto reference = Backbone::load(config, reference_options)->forward_normalised(sample, compared);
  const auto ours = backbone->forward_normalised(sample, compared);
  double max_abs_diff = 0.0;
  double max_abs_reference = 0.0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    for (std::size_t j = 0; j < reference[i].size(); ++j) {
      max_abs_diff = std::max(max_abs_diff, static_cast<double>(std::fabs(reference[i][j] - ours[i][j])));
      max_abs_reference = std::max(max_abs_reference, static_cast<double>(std::fabs(reference[i][j])));
    }
  }

  // Wire sizes: run the real stages on the inputs and measure every encoded message.
  const auto job_inputs = inputs.empty() ? decltype(collect_inputs(inputs)){} : collect_inputs(inputs);
  JobSettings settings;
  settings.model = model;
  settings.batch_size = 32;  // images per message, as `imgpipe submit` sends them
  PreprocessStage preprocess(store);
  FeatureStage feature(store, compute);
  ClassifyStage classify(store);
  const JobRef job{"bench", "imgpipe.results.bench", model, ""};
  std::size_t wire[4] = {0, 0, 0, 0};
  std::size_t counted = 0;
  std::size_t preprocessed = 0;
  double preprocess_seconds = 0.0;  // one thread decoding and fitting: what one preprocess core does
  for_each_batch(
      job_inputs, job, settings,
      [&](ImageBatch&& images_batch) {
        wire[0] += encode(images_batch).size();
        const auto preprocess_start = std::chrono::steady_clock::now();
        auto pixels = preprocess.process(images_batch);
        preprocess_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - preprocess_start).count();
        preprocessed += images_batch.images.size();
        if (!pixels.next) return;
        wire[1] += encode(*pixels.next).size();
        auto features = feature.process(*pixels.next);
        if (!features.next) return;
        wire[2] += encode(*features.next).size();
        auto results = classify.process(*features.next);
        if (!results.next) return;
        wire[3] += encode(*results.next).size();
        counted += item_count(*results.next);
      },
      [](const ImageResult&, const std::string&) {});

  std::cout << std::fixed << std::setprecision(1);
  std::cout << "model " << model << " (" << config.backbone.architecture << ", " << config.input.width << "x"
            << config.input.height << "x" << config.input.channels << " -> " << config.backbone.feature_dim
            << " features) on " << backbone->device() << ", batch " << batch_size << "\n";
  std::cout << "bare_forward_images_per_s " << static_cast<double>(images) / elapsed << "\n";
  std::cout << std::scientific << std::setprecision(2) << "max_abs_diff_vs_libtorch_f32 " << max_abs_diff
            << "\n"
            << "max_abs_feature " << max_abs_reference << "\n"
            << std::fixed << std::setprecision(1);
  if (preprocessed > 0 && preprocess_seconds > 0.0) {
    std::cout << "preprocess_images_per_s_one_thread "
              << static_cast<double>(preprocessed) / preprocess_seconds << "\n";
  }
  if (counted > 0) {
    const char* edges[4] = {"images", "pixels", "features", "results"};
    std::size_t total = 0;
    for (int i = 0; i < 4; ++i) {
      std::cout << "wire_bytes_per_image_" << edges[i] << " "
                << static_cast<double>(wire[i]) / static_cast<double>(counted) << "\n";
      total += wire[i];
    }
    std::cout << "wire_bytes_per_image_total " << static_cast<double>(total) / static_cast<double>(counted)
              << "\n";
  }
  return 0;
}
