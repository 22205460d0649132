// imgpipe-train-backbone: trains the fashion-cnn feature extractor on Fashion-MNIST and writes it to the
// model store as a backbone-only entry (backbone.pt + model.json, no classifier). `imgpipe train` then fits
// the linear SVM on its features.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "imgpipe/models/model_store.hpp"
#include "imgpipe/training/backbone_training.hpp"
#include "imgpipe/training/fashion_mnist.hpp"

int main(int argc, char** argv) {
  imgpipe::BackboneTrainingOptions options;
  const char* models_env = std::getenv("IMGPIPE_MODELS");
  std::string models = models_env ? models_env : "models";
  std::string name = imgpipe::kFashionBackboneArchitecture;
  std::string data = options.data_dir.string();

  CLI::App app{"Train the fashion-cnn backbone on Fashion-MNIST and store it as a backbone-only model"};
  app.add_option("--data", data, "Fashion-MNIST folder with the IDX .gz files")->capture_default_str();
  app.add_option("--epochs", options.epochs, "training epochs")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--seed", options.seed, "seed of weights, dropout, shuffling and augmentation")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "LibTorch intra-op threads (results depend on it)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--models", models, "model store root (default: $IMGPIPE_MODELS, else ./models)")
      ->capture_default_str();
  app.add_option("--name", name, "model name in the store")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.data_dir = data;

  try {
    const imgpipe::ModelStore store(models);
    imgpipe::ModelConfig config;
    config.name = name;
    const auto dir = store.dir_of(name);  // validates the name before we spend minutes training
    const auto backbone_file = dir / "backbone.pt";
    store.keep_current(name);  // batches of the version there now can still run on it
    std::printf("training %s on %s: %d epochs, seed %llu, %d threads -> %s\n", name.c_str(), data.c_str(),
                options.epochs, static_cast<unsigned long long>(options.seed), options.threads,
                backbone_file.string().c_str());
    std::fflush(stdout);

    const auto result = imgpipe::train_fashion_backbone(
        options, backbone_file,
        [](const imgpipe::EpochReport& e) {
          std::printf("epoch %2d/%d  loss %.4f  train acc %.4f  test acc (head) %.4f  %.1f s\n", e.epoch,
                      e.epochs, e.loss, e.train_accuracy, e.test_accuracy, e.seconds);
          std::fflush(stdout);
        },
        [](std::string_view line) {
          std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
          std::fflush(stdout);
        });

    config.description = "Fashion-MNIST CNN feature extractor (" + std::to_string(options.epochs) +
                         " epochs, seed " + std::to_string(options.seed) + ", " +
                         std::to_string(options.threads) +
                         " threads); backbone only: fit a classifier on its features";
    config.input.width = imgpipe::kFashionMnistSide;
    config.input.height = imgpipe::kFashionMnistSide;
    config.input.channels = 1;
    config.input.resize = imgpipe::ResizeMode::stretch;
    config.input.interpolation = imgpipe::Interpolation::area;
    config.input.mean = {result.mean};
    config.input.std = {result.std};
    config.backbone.file = backbone_file.filename().string();
    config.backbone.sha256 = imgpipe::sha256_hex_of_file(backbone_file);
    config.backbone.architecture = imgpipe::kFashionBackboneArchitecture;
    config.backbone.feature_dim = result.feature_dim;
    const std::string version = store.save(config);

    std::printf("head test accuracy %.4f, linear probe test accuracy %.4f\n", result.head_test_accuracy,
                result.linear_probe_test_accuracy);
    std::printf("training %.1f s, total %.1f s\n", result.training_seconds, result.total_seconds);
    std::printf("saved %s (version %s, backbone sha256 %s)\n", (dir / "model.json").string().c_str(),
                version.c_str(), config.backbone.sha256.substr(0, 12).c_str());
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "imgpipe-train-backbone: %s\n", error.what());
    return 1;
  }
}
