// Trains the `fashion-cnn` feature extractor on Fashion-MNIST with LibTorch and exports it as TorchScript.
// LibTorch stays inside backbone_training.cpp: this header is plain C++ so workers compile fast.
//
// The exported module's forward(x) takes N x 1 x 28 x 28 float pixels, already normalised as
// (pixel/255 - mean) / std with the mean and std reported here, and returns N x feature_dim float features:
// the ReLU'd penultimate layer, the one the softmax head was trained on, so a linear SVM separates it well.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "imgpipe/training/fashion_mnist.hpp"

namespace imgpipe {

inline constexpr const char* kFashionBackboneArchitecture = "fashion-cnn";

struct BackboneTrainingOptions {
  std::filesystem::path data_dir = kDefaultFashionMnistDir;
  int epochs = 15;
  std::uint64_t seed = 1;
  int threads = 2;  // intra-op threads; results are reproducible for a fixed seed and thread count
  int batch_size = 128;
  double max_learning_rate = 3e-3;  // AdamW, one-cycle: warm-up then cosine decay to zero
  double weight_decay = 5e-2;
};

struct EpochReport {
  int epoch = 0;  // 1-based
  int epochs = 0;
  double loss = 0.0;            // mean training cross-entropy (augmented, dropout on)
  double train_accuracy = 0.0;  // on the augmented batches, dropout on
  double test_accuracy = 0.0;   // softmax head on the 10k test split, eval mode
  double seconds = 0.0;         // training time of this epoch, evaluation excluded
};

struct BackboneTrainingResult {
  float mean = 0.0f;  // of pixel/255 over the train split
  float std = 1.0f;
  int feature_dim = 0;
  std::vector<EpochReport> epochs;
  double training_seconds = 0.0;            // all epochs, evaluation excluded
  double head_test_accuracy = 0.0;          // softmax head after the last epoch
  double linear_probe_test_accuracy = 0.0;  // softmax regression refit on the exported module's features
  double export_max_abs_difference = 0.0;   // exported module vs the trained net, eval mode
  double total_seconds = 0.0;               // everything: loading, training, export, checks, probe
};

using TrainingLog = std::function<void(std::string_view line)>;

// Trains, exports to `backbone_file` (TorchScript), reloads it with torch::jit::load and checks that its
// features equal the trained net's. Throws std::runtime_error when the export does not reproduce the net.
// `on_epoch` is called after each epoch; `log` gets one line per other milestone.
BackboneTrainingResult train_fashion_backbone(const BackboneTrainingOptions& options,
                                              const std::filesystem::path& backbone_file,
                                              const std::function<void(const EpochReport&)>& on_epoch = {},
                                              const TrainingLog& log = {});

}  // namespace imgpipe
