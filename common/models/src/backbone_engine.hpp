// What an engine does for Backbone: a forward pass over normalised N x C x H x W floats. Private to models/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "imgpipe/models/backbone.hpp"

namespace imgpipe {

struct FeatureRows {
  std::vector<float> values;  // rows x width, row-major
  std::int64_t width = 0;
};

class BackboneEngine {
 public:
  virtual ~BackboneEngine() = default;
  // `count` images of the model's input geometry. May be called from several threads at once.
  virtual FeatureRows forward(const float* nchw, int count) const = 0;
  // Engine, device and precision, e.g. "openvino CPU f32".
  virtual const std::string& description() const = 0;
};

std::unique_ptr<BackboneEngine> make_torchscript_engine(const ModelConfig& config, bool use_cuda);
std::unique_ptr<BackboneEngine> make_openvino_engine(const ModelConfig& config, int threads,
                                                     Precision precision);
bool torch_cuda_available();

}  // namespace imgpipe
