// The OpenVINO engine: the model's ONNX file compiled for the CPU (from the PyPI wheel's C++ runtime,
// scripts/install-openvino). On this project's 2-core machine it ran EfficientNet-Lite0 about 5x faster than
// LibTorch 1.13 with the same outputs to 1e-5 (docs/benchmarks.md).
#include <openvino/openvino.hpp>

#include <mutex>
#include <thread>

#include "backbone_engine.hpp"

namespace imgpipe {
namespace {

class OpenVinoEngine final : public BackboneEngine {
 public:
  OpenVinoEngine(const ModelConfig& config, int threads, Precision precision) : input_(config.input) {
    const std::string file = config.onnx_path().string();
    try {
      const auto model = core_.read_model(file);
      // f32 must be asked for: on CPUs with AVX512-BF16 or AMX OpenVINO otherwise computes in bf16.
      // No pinning: several workers (and the preprocess threads) share the cores of one host.
      compiled_ = core_.compile_model(
          model, "CPU", ov::hint::performance_mode(ov::hint::PerformanceMode::LATENCY),
          ov::hint::inference_precision(precision == Precision::bf16 ? ov::element::bf16 : ov::element::f32),
          ov::inference_num_threads(threads), ov::hint::enable_cpu_pinning(false));
      const auto actual = compiled_.get_property(ov::hint::inference_precision);
      if (precision == Precision::bf16 && actual != ov::element::bf16) {
        throw ModelError("precision bf16 was asked for, but this CPU runs " + file + " in " +
                         actual.get_type_name() + " (it has no bf16 instructions)");
      }
      description_ = "openvino CPU " + std::string(to_string(precision));
    } catch (const ov::Exception& error) {
      throw ModelError("OpenVINO cannot load the ONNX backbone " + file + ": " + error.what());
    }
  }

  FeatureRows forward(const float* nchw, int count) const override {
    Lease lease(*this);
    try {
      const ov::Tensor pixels(
          ov::element::f32,
          ov::Shape{static_cast<std::size_t>(count), static_cast<std::size_t>(input_.channels),
                    static_cast<std::size_t>(input_.height), static_cast<std::size_t>(input_.width)},
          const_cast<float*>(nchw));
      lease.request.set_input_tensor(pixels);
      lease.request.infer();
      const ov::Tensor features = lease.request.get_output_tensor();
      const float* data = features.data<const float>();
      const auto rows = static_cast<std::int64_t>(features.get_shape().at(0));
      if (rows != count) {
        throw ModelError("the ONNX backbone returned " + std::to_string(rows) + " rows for " +
                         std::to_string(count) + " images");
      }
      return FeatureRows{std::vector<float>(data, data + features.get_size()),
                         static_cast<std::int64_t>(features.get_size()) / std::max<std::int64_t>(1, rows)};
    } catch (const ov::Exception& error) {
      throw ModelError(std::string("OpenVINO forward pass failed: ") + error.what());
    }
  }

  const std::string& description() const override { return description_; }

 private:
  // An infer request is single-threaded; concurrent callers each take one from the pool (made on demand).
  struct Lease {
    explicit Lease(const OpenVinoEngine& engine) : owner(engine) {
      const std::lock_guard lock(owner.pool_mutex_);
      if (owner.pool_.empty()) {
        request = owner.compiled_.create_infer_request();
      } else {
        request = std::move(owner.pool_.back());
        owner.pool_.pop_back();
      }
    }
    ~Lease() {
      const std::lock_guard lock(owner.pool_mutex_);
      owner.pool_.push_back(std::move(request));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    const OpenVinoEngine& owner;
    ov::InferRequest request;
  };

  InputSpec input_;
  ov::Core core_;
  mutable ov::CompiledModel compiled_;
  mutable std::mutex pool_mutex_;
  mutable std::vector<ov::InferRequest> pool_;
  std::string description_;
};

}  // namespace

std::unique_ptr<BackboneEngine> make_openvino_engine(const ModelConfig& config, int threads,
                                                     Precision precision) {
  const int chosen =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<OpenVinoEngine>(config, chosen, precision);
}

}  // namespace imgpipe
