#include "imgpipe/models/backbone.hpp"

#include <torch/script.h>
#include <torch/torch.h>

#include <thread>

namespace imgpipe {

struct Backbone::Impl {
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  std::string device_name;
  InputSpec input;
  int feature_dim = 0;
  int batch_size = 32;
  std::string model_name;

  std::vector<std::vector<float>> run(torch::Tensor batch) const {
    torch::InferenceMode inference;
    std::vector<std::vector<float>> out;
    const auto count = batch.size(0);
    out.reserve(static_cast<std::size_t>(count));
    for (std::int64_t start = 0; start < count; start += batch_size) {
      auto chunk = batch.slice(0, start, std::min<std::int64_t>(count, start + batch_size)).to(device);
      // forward() is const on the module's data; the jit API just is not const-qualified.
      auto result = const_cast<torch::jit::Module&>(module).forward({chunk});
      if (!result.isTensor()) {
        throw ModelError("backbone of " + model_name + " returned " + result.tagKind() + ", not a tensor");
      }
      auto features = result.toTensor().to(torch::kCPU, torch::kFloat).contiguous().flatten(1);
      if (feature_dim > 0 && features.size(1) != feature_dim) {
        throw ModelError("backbone of " + model_name + " produced " + std::to_string(features.size(1)) +
                         " features per image, model.json says " + std::to_string(feature_dim));
      }
      const float* data = features.data_ptr<float>();
      const std::int64_t width = features.size(1);
      for (std::int64_t row = 0; row < features.size(0); ++row) {
        out.emplace_back(data + row * width, data + (row + 1) * width);
      }
    }
    return out;
  }
};

void configure_compute(const ComputeOptions& options) {
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
}

Backbone::Backbone(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Backbone::~Backbone() = default;

std::shared_ptr<const Backbone> Backbone::load(const ModelConfig& config, const ComputeOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->input = config.input;
  impl->feature_dim = config.backbone.feature_dim;
  impl->batch_size = std::max(1, options.batch_size);
  impl->model_name = config.name;
  if (options.allow_cuda && torch::cuda::is_available()) impl->device = torch::Device(torch::kCUDA, 0);
  impl->device_name = impl->device.str();
  try {
    impl->module = torch::jit::load(config.backbone_path().string(), impl->device);
    if (impl->module.hasattr("training")) impl->module.eval();
  } catch (const c10::Error& error) {
    throw ModelError("cannot load the TorchScript backbone " + config.backbone_path().string() + ": " +
                     error.what_without_backtrace());
  }
  // Freezing and fusing (conv+bn, etc.) made the forward pass 1.1-1.9x faster here; a module that
  // cannot be frozen still runs as it is.
  try {
    impl->module = torch::jit::optimize_for_inference(impl->module);
  } catch (const c10::Error&) {
  }
  return std::shared_ptr<const Backbone>(new Backbone(std::move(impl)));
}

std::vector<std::vector<float>> Backbone::extract(std::span<const PixelImage* const> images) const {
  const InputSpec& input = impl_->input;
  const auto count = static_cast<std::int64_t>(images.size());
  auto batch = torch::empty({count, input.channels, input.height, input.width}, torch::kFloat);
  float* out = batch.data_ptr<float>();
  const std::size_t plane = static_cast<std::size_t>(input.width) * static_cast<std::size_t>(input.height);
  const auto channels = static_cast<std::size_t>(input.channels);
  for (std::size_t n = 0; n < images.size(); ++n) {
    const PixelImage& image = *images[n];
    if (image.width != input.width || image.height != input.height || image.channels != input.channels) {
      throw ModelError("pixels of " + image.image_id + " are " + std::to_string(image.width) + "x" +
                       std::to_string(image.height) + "x" + std::to_string(image.channels) +
                       ", the model wants " + std::to_string(input.width) + "x" +
                       std::to_string(input.height) + "x" + std::to_string(input.channels));
    }
    // HWC uint8 -> CHW float, (x/255 - mean)/std, exactly as the backbone was trained.
    for (std::size_t c = 0; c < channels; ++c) {
      const float scale = 1.0f / (255.0f * input.std[c]);
      const float shift = input.mean[c] / input.std[c];
      float* dst = out + (n * channels + c) * plane;
      const std::uint8_t* src = image.pixels.data() + c;
      for (std::size_t i = 0; i < plane; ++i) dst[i] = static_cast<float>(src[i * channels]) * scale - shift;
    }
  }
  return impl_->run(batch);
}

std::vector<std::vector<float>> Backbone::forward_normalised(const std::vector<float>& nchw,
                                                             int count) const {
  const InputSpec& input = impl_->input;
  auto batch = torch::from_blob(const_cast<float*>(nchw.data()),
                                {count, input.channels, input.height, input.width}, torch::kFloat);
  return impl_->run(batch);
}

int Backbone::measure_feature_dim() const {
  const InputSpec& input = impl_->input;
  std::vector<float> blank(static_cast<std::size_t>(input.channels * input.width * input.height), 0.0f);
  return static_cast<int>(forward_normalised(blank, 1).at(0).size());
}

const std::string& Backbone::device() const {
  return impl_->device_name;
}

}  // namespace imgpipe
