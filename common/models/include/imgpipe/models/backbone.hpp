// The feature extractor: a CNN run by one of two engines (model_store.hpp's Engine). LibTorch and OpenVINO
// stay inside the engines' .cpp files: this header is cheap to include.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "imgpipe/messages/batch.hpp"
#include "imgpipe/models/model_store.hpp"

namespace imgpipe {

struct ComputeOptions {
  int threads = 0;                     // intra-op threads of the engine; 0 = one per core
  int batch_size = 0;                  // images per forward pass; 0 = the model's own (model.json), else 32
  bool allow_cuda = true;              // use CUDA when LibTorch was built with it and a device is present
  std::optional<Engine> engine;        // overrides model.json's engine
  std::optional<Precision> precision;  // overrides model.json's precision
};

// ComputeOptions from command-line values: empty engine/precision = the model's own. Throws ModelError naming
// the choices for an unknown one.
ComputeOptions compute_options_from(int threads, int batch_size, const std::string& engine,
                                    const std::string& precision);

// Images per forward pass when neither the worker nor model.json says.
inline constexpr int kDefaultForwardBatch = 32;

// Applies the process-wide LibTorch settings (thread count). Call once at start-up.
void configure_compute(const ComputeOptions& options);

class BackboneEngine;

class Backbone {
 public:
  // Loads the model's network for the engine chosen by `options` or model.json (files already
  // sha256-verified by ModelStore::load).
  static std::shared_ptr<const Backbone> load(const ModelConfig& config, const ComputeOptions& options);
  ~Backbone();
  Backbone(const Backbone&) = delete;
  Backbone& operator=(const Backbone&) = delete;

  // One feature vector per image, in order. Every image must already have the model's input geometry.
  std::vector<std::vector<float>> extract(std::span<const PixelImage* const> images) const;
  // The same for a float tensor already normalised, N x C x H x W in `nchw`; used by the benchmark.
  std::vector<std::vector<float>> forward_normalised(const std::vector<float>& nchw, int count) const;
  // Runs one blank image to learn how many features the module gives (model.json's feature_dim 0 = unknown).
  int measure_feature_dim() const;
  // Which engine, device and precision run the forward pass, e.g. "openvino CPU f32" or "libtorch cpu".
  const std::string& device() const;
  int batch_size() const { return batch_size_; }

 private:
  Backbone(std::unique_ptr<BackboneEngine> engine, const ModelConfig& config, int batch_size);
  std::vector<std::vector<float>> run(const float* nchw, int count) const;

  std::unique_ptr<BackboneEngine> engine_;
  std::string model_name_;
  InputSpec input_;
  int feature_dim_ = 0;
  int batch_size_ = kDefaultForwardBatch;
};

}  // namespace imgpipe
