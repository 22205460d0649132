// The TorchScript feature extractor. LibTorch stays inside backbone.cpp: this header is cheap to include.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "imgpipe/messages/batch.hpp"
#include "imgpipe/models/model_store.hpp"

namespace imgpipe {

struct ComputeOptions {
  int threads = 0;         // intra-op threads for LibTorch; 0 = one per core
  int batch_size = 32;     // images per forward pass
  bool allow_cuda = true;  // use CUDA when LibTorch was built with it and a device is present
};

// Applies the process-wide LibTorch settings (thread count). Call once at start-up.
void configure_compute(const ComputeOptions& options);

class Backbone {
 public:
  // Loads the model's TorchScript file (already sha256-verified by ModelStore::load).
  static std::shared_ptr<const Backbone> load(const ModelConfig& config, const ComputeOptions& options);
  ~Backbone();
  Backbone(const Backbone&) = delete;
  Backbone& operator=(const Backbone&) = delete;

  // One feature vector per image, in order. Every image must already have the model's input geometry.
  std::vector<std::vector<float>> extract(std::span<const PixelImage* const> images) const;
  // The same for a float tensor already normalised, N x C x H x W in `chw`; used by the benchmark.
  std::vector<std::vector<float>> forward_normalised(const std::vector<float>& nchw, int count) const;
  // Runs one blank image to learn how many features the module gives (model.json's feature_dim 0 = unknown).
  int measure_feature_dim() const;
  const std::string& device() const;

 private:
  struct Impl;
  explicit Backbone(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace imgpipe
