#include "imgpipe/models/backbone.hpp"

#include <algorithm>

#include "backbone_engine.hpp"

namespace imgpipe {
namespace {

std::unique_ptr<BackboneEngine> make_engine(const ModelConfig& config, const ComputeOptions& options) {
  const Precision precision = options.precision.value_or(config.backbone.precision);
  // A GPU goes to LibTorch (the engine with CUDA) unless the worker names an engine.
  const bool cuda =
      options.allow_cuda && !options.engine && precision == Precision::f32 && torch_cuda_available();
  const Engine engine = cuda ? Engine::libtorch : options.engine.value_or(config.backbone.engine);
  if (engine == Engine::openvino) return make_openvino_engine(config, options.threads, precision);
  if (precision != Precision::f32) {
    throw ModelError("precision " + std::string(to_string(precision)) +
                     " is offered by the openvino engine only (model " + config.name + " runs on libtorch)");
  }
  return make_torchscript_engine(config, cuda);
}

}  // namespace

ComputeOptions compute_options_from(int threads, int batch_size, const std::string& engine,
                                    const std::string& precision) {
  ComputeOptions options;
  options.threads = threads;
  options.batch_size = batch_size;
  if (!engine.empty()) options.engine = engine_from_string(engine);
  if (!precision.empty()) options.precision = precision_from_string(precision);
  return options;
}

Backbone::Backbone(std::unique_ptr<BackboneEngine> engine, const ModelConfig& config, int batch_size)
    : engine_(std::move(engine)),
      model_name_(config.name),
      input_(config.input),
      feature_dim_(config.backbone.feature_dim),
      batch_size_(batch_size) {}

Backbone::~Backbone() = default;

std::shared_ptr<const Backbone> Backbone::load(const ModelConfig& config, const ComputeOptions& options) {
  const int batch_size = options.batch_size > 0           ? options.batch_size
                         : config.backbone.batch_size > 0 ? config.backbone.batch_size
                                                          : kDefaultForwardBatch;
  return std::shared_ptr<const Backbone>(new Backbone(make_engine(config, options), config, batch_size));
}

std::vector<std::vector<float>> Backbone::run(const float* nchw, int count) const {
  const std::size_t image_floats = static_cast<std::size_t>(input_.channels) *
                                   static_cast<std::size_t>(input_.width) *
                                   static_cast<std::size_t>(input_.height);
  std::vector<std::vector<float>> out;
  out.reserve(static_cast<std::size_t>(count));
  for (int start = 0; start < count; start += batch_size_) {
    const int chunk = std::min(count - start, batch_size_);
    const FeatureRows rows = engine_->forward(nchw + static_cast<std::size_t>(start) * image_floats, chunk);
    if (feature_dim_ > 0 && rows.width != feature_dim_) {
      throw ModelError("backbone of " + model_name_ + " produced " + std::to_string(rows.width) +
                       " features per image, model.json says " + std::to_string(feature_dim_));
    }
    const auto width = static_cast<std::size_t>(rows.width);
    for (int row = 0; row < chunk; ++row) {
      const float* first = rows.values.data() + static_cast<std::size_t>(row) * width;
      out.emplace_back(first, first + width);
    }
  }
  return out;
}

std::vector<std::vector<float>> Backbone::extract(std::span<const PixelImage* const> images) const {
  const std::size_t plane = static_cast<std::size_t>(input_.width) * static_cast<std::size_t>(input_.height);
  const auto channels = static_cast<std::size_t>(input_.channels);
  std::vector<float> batch(images.size() * channels * plane);
  for (std::size_t n = 0; n < images.size(); ++n) {
    const PixelImage& image = *images[n];
    if (image.width != input_.width || image.height != input_.height || image.channels != input_.channels) {
      throw ModelError("pixels of " + image.image_id + " are " + std::to_string(image.width) + "x" +
                       std::to_string(image.height) + "x" + std::to_string(image.channels) +
                       ", the model wants " + std::to_string(input_.width) + "x" +
                       std::to_string(input_.height) + "x" + std::to_string(input_.channels));
    }
    // HWC uint8 -> CHW float, (x/255 - mean)/std, exactly as the backbone was trained.
    for (std::size_t c = 0; c < channels; ++c) {
      const float scale = 1.0f / (255.0f * input_.std[c]);
      const float shift = input_.mean[c] / input_.std[c];
      float* dst = batch.data() + (n * channels + c) * plane;
      const std::uint8_t* src = image.pixels.data() + c;
      for (std::size_t i = 0; i < plane; ++i) dst[i] = static_cast<float>(src[i * channels]) * scale - shift;
    }
  }
  return run(batch.data(), static_cast<int>(images.size()));
}

std::vector<std::vector<float>> Backbone::forward_normalised(const std::vector<float>& nchw,
                                                             int count) const {
  return run(nchw.data(), count);
}

int Backbone::measure_feature_dim() const {
  std::vector<float> blank(static_cast<std::size_t>(input_.channels * input_.width * input_.height), 0.0f);
  return static_cast<int>(forward_normalised(blank, 1).at(0).size());
}

const std::string& Backbone::device() const {
  return engine_->description();
}

}  // namespace imgpipe
