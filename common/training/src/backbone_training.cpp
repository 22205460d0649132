#include "imgpipe/training/backbone_training.hpp"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <numbers>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>

namespace imgpipe {
namespace fs = std::filesystem;

namespace {

constexpr int kSide = kFashionMnistSide;
constexpr std::int64_t kPixels = kSide * kSide;
constexpr int kFeatureDim = 256;
constexpr int kCropPadding = 2;  // random crop of the image padded by 2 px of background
constexpr std::int64_t kEvalBatch = 1000;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Three blocks of conv(3x3, no bias) -> BatchNorm -> ReLU -> 2x2 max-pool: 28 -> 14 -> 7 -> 3. Then a fully
// connected layer with BatchNorm and ReLU gives the feature vector, and a linear softmax head sits on top.
// Because the head is linear on exactly these features, a linear SVM trained on them later fits them as well.
// About 7.8 M multiply-adds per image: sized so 2 CPU cores train it in minutes, not hours.
struct FashionNetImpl : torch::nn::Module {
  FashionNetImpl()
      : conv1(torch::nn::Conv2dOptions(1, 32, 3).padding(1).bias(false)),
        bn1(32),
        conv2(torch::nn::Conv2dOptions(32, 64, 3).padding(1).bias(false)),
        bn2(64),
        conv3(torch::nn::Conv2dOptions(64, 128, 3).padding(1).bias(false)),
        bn3(128),
        fc(torch::nn::LinearOptions(128 * 3 * 3, kFeatureDim).bias(false)),
        bn_fc(kFeatureDim),
        head(kFeatureDim, kFashionMnistClasses) {
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    register_module("conv2", conv2);
    register_module("bn2", bn2);
    register_module("conv3", conv3);
    register_module("bn3", bn3);
    register_module("fc", fc);
    register_module("bn_fc", bn_fc);
    register_module("head", head);
  }

  torch::Tensor features(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);  // 32 x 14 x 14
    x = torch::max_pool2d(torch::relu(bn2(conv2(x))), 2);  // 64 x 7 x 7
    x = torch::max_pool2d(torch::relu(bn3(conv3(x))), 2);  // 128 x 3 x 3
    x = torch::dropout(x.flatten(1), 0.1, is_training());
    return torch::relu(bn_fc(fc(x)));
  }

  torch::Tensor forward(torch::Tensor x) { return head(torch::dropout(features(x), 0.2, is_training())); }

  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Conv2d conv3;
  torch::nn::BatchNorm2d bn3;
  torch::nn::Linear fc;
  torch::nn::BatchNorm1d bn_fc;
  torch::nn::Linear head;
};
TORCH_MODULE(FashionNet);

// The exported graph: same feature path, BatchNorm folded into the preceding weights (eval mode).
constexpr const char* kExportedForward = R"TS(
def forward(self, x: Tensor) -> Tensor:
    assert x.dim() == 4 and x.size(1) == 1 and x.size(2) == 28 and x.size(3) == 28, "fashion-cnn expects N x 1 x 28 x 28 normalised pixels"
    x = torch.max_pool2d(torch.relu(torch.conv2d(x, self.conv1_weight, self.conv1_bias, [1, 1], [1, 1])), [2, 2])
    x = torch.max_pool2d(torch.relu(torch.conv2d(x, self.conv2_weight, self.conv2_bias, [1, 1], [1, 1])), [2, 2])
    x = torch.max_pool2d(torch.relu(torch.conv2d(x, self.conv3_weight, self.conv3_bias, [1, 1], [1, 1])), [2, 2])
    return torch.relu(torch.linear(torch.flatten(x, 1), self.fc_weight, self.fc_bias))
)TS";

struct Folded {
  torch::Tensor weight;
  torch::Tensor bias;
};

// y = gamma * (W x - mean) / sqrt(var + eps) + beta  ==  (scale * W) x + (beta - scale * mean).
// Works for conv (out x in x kh x kw) and linear (out x in) weights alike: scale is per output channel.

template <typename BatchNorm>
Folded fold(const torch::Tensor& weight, BatchNorm& bn) {
  const double eps = bn->options.eps();
  const torch::Tensor scale = bn->weight / torch::sqrt(bn->running_var + eps);
  std::vector<std::int64_t> shape(static_cast<std::size_t>(weight.dim()), 1);
  shape[0] = -1;
  return {(weight * scale.reshape(shape)).contiguous(), (bn->bias - scale * bn->running_mean).contiguous()};
}

torch::jit::Module export_backbone(FashionNet& net) {
  torch::NoGradGuard no_grad;
  torch::jit::Module module("FashionBackbone");
  const auto add = [&module](const std::string& name, const Folded& folded) {
    module.register_parameter(name + "_weight", folded.weight.detach().clone(), false);
    module.register_parameter(name + "_bias", folded.bias.detach().clone(), false);
  };
  add("conv1", fold(net->conv1->weight, net->bn1));
  add("conv2", fold(net->conv2->weight, net->bn2));
  add("conv3", fold(net->conv3->weight, net->bn3));
  add("fc", fold(net->fc->weight, net->bn_fc));
  module.define(kExportedForward);
  module.eval();
  return module;
}

// Pixels to normalised floats through a 256-entry table, so training and the pipeline use the same formula.
std::array<float, 256> normalisation_table(float mean, float std) {
  std::array<float, 256> table{};
  for (int value = 0; value < 256; ++value) {
    table[static_cast<std::size_t>(value)] = (static_cast<float>(value) / 255.0f - mean) / std;
  }
  return table;
}

torch::Tensor normalised_tensor(const FashionMnistImages& data, const std::array<float, 256>& table) {
  torch::Tensor out = torch::empty({static_cast<std::int64_t>(data.size()), 1, kSide, kSide});
  float* dst = out.data_ptr<float>();
  for (std::size_t i = 0; i < data.images.size(); ++i) dst[i] = table[data.images[i]];
  return out;
}

torch::Tensor label_tensor(const FashionMnistImages& data) {
  return torch::from_blob(const_cast<std::uint8_t*>(data.labels.data()),
                          {static_cast<std::int64_t>(data.size())}, torch::kUInt8)
      .to(torch::kLong);
}

// Random horizontal flip and a random shift within the 2-px padded frame, straight into the batch buffer.
// Uses our own seeded engine (not torch's) so the augmentation stream is fixed by the seed alone.
void augment_into(const std::uint8_t* image, const std::array<float, 256>& table, std::mt19937& rng,
                  float* out) {
  std::uniform_int_distribution<int> shift(-kCropPadding, kCropPadding);
  std::bernoulli_distribution flip(0.5);
  const int dx = shift(rng);
  const int dy = shift(rng);
  const bool mirrored = flip(rng);
  const float background = table[0];
  for (int y = 0; y < kSide; ++y) {
    const int sy = y + dy;
    for (int x = 0; x < kSide; ++x) {
      const int sx = (mirrored ? kSide - 1 - x : x) + dx;
      out[y * kSide + x] =
          (sy < 0 || sy >= kSide || sx < 0 || sx >= kSide) ? background : table[image[sy * kSide + sx]];
    }
  }
}

// One cycle: linear warm-up over the first 10% of steps from max/10, then cosine decay towards zero.
double learning_rate_at(std::int64_t step, std::int64_t total, double max_rate) {
  const auto warmup = std::max<std::int64_t>(1, total / 10);
  if (step < warmup) return max_rate * (0.1 + 0.9 * static_cast<double>(step) / static_cast<double>(warmup));
  const double progress =
      static_cast<double>(step - warmup) / static_cast<double>(std::max<std::int64_t>(1, total - warmup));
  return max_rate * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

template <typename Forward>
torch::Tensor batched(const torch::Tensor& inputs, Forward&& forward) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> outputs;
  for (std::int64_t start = 0; start < inputs.size(0); start += kEvalBatch) {
    outputs.push_back(forward(inputs.slice(0, start, std::min(start + kEvalBatch, inputs.size(0)))));
  }
  return torch::cat(outputs);
}

double accuracy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return logits.argmax(1).eq(labels).to(torch::kDouble).mean().item<double>();
}

torch::Tensor exported_features(torch::jit::Module& module, const torch::Tensor& inputs) {
  return batched(inputs,
                 [&module](const torch::Tensor& batch) { return module.forward({batch}).toTensor(); });
}

// Refits a softmax regression on standardised features of the exported module: a check, independent of
// the trained head, of how well a linear classifier separates what the pipeline will actually see.
double linear_probe(const torch::Tensor& train_features, const torch::Tensor& train_labels,
                    const torch::Tensor& test_features, const torch::Tensor& test_labels) {
  const torch::Tensor mean = train_features.mean(0);
  const torch::Tensor scale = train_features.std(0) + 1e-6;
  const torch::Tensor train_x = (train_features - mean) / scale;
  const torch::Tensor test_x = (test_features - mean) / scale;
  torch::nn::Linear classifier(train_x.size(1), kFashionMnistClasses);
  torch::optim::Adam optimizer(classifier->parameters(), torch::optim::AdamOptions(1e-2));
  for (int step = 0; step < 300; ++step) {
    optimizer.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(classifier(train_x), train_labels);
    loss.backward();
    optimizer.step();
  }
  torch::NoGradGuard no_grad;
  return accuracy(classifier(test_x), test_labels);
}

std::string printf_string(const char* pattern, double a, double b = 0.0) {
  std::array<char, 256> text{};
  std::snprintf(text.data(), text.size(), pattern, a, b);
  return text.data();
}

}  // namespace

BackboneTrainingResult train_fashion_backbone(const BackboneTrainingOptions& options,
                                              const fs::path& backbone_file,
                                              const std::function<void(const EpochReport&)>& on_epoch,
                                              const TrainingLog& log) {
  if (options.epochs < 1 || options.batch_size < 1 || options.threads < 1) {
    throw std::invalid_argument("backbone training needs epochs, batch size and threads of at least 1");
  }
  const auto say = [&log](const std::string& line) {
    if (log) log(line);
  };
  const auto started = Clock::now();
  torch::set_num_threads(options.threads);
  torch::manual_seed(options.seed);
  std::mt19937 rng(static_cast<std::mt19937::result_type>(options.seed));

  const FashionMnistImages train = load_fashion_mnist(options.data_dir, FashionMnistSplit::train);
  const FashionMnistImages test = load_fashion_mnist(options.data_dir, FashionMnistSplit::test);

  BackboneTrainingResult result;
  double sum = 0.0;
  double sum_squares = 0.0;
  for (const std::uint8_t value : train.images) {
    const double x = value / 255.0;
    sum += x;
    sum_squares += x * x;
  }
  const double count = static_cast<double>(train.images.size());
  result.mean = static_cast<float>(sum / count);
  result.std = static_cast<float>(std::sqrt(sum_squares / count - (sum / count) * (sum / count)));
  result.feature_dim = kFeatureDim;
  const auto table = normalisation_table(result.mean, result.std);
  say(printf_string("loaded %.0f train and %.0f test images", static_cast<double>(train.size()),
                    static_cast<double>(test.size())) +
      printf_string("; pixel mean %.4f std %.4f", result.mean, result.std));

  const torch::Tensor train_labels = label_tensor(train);
  const torch::Tensor test_inputs = normalised_tensor(test, table);
  const torch::Tensor test_labels = label_tensor(test);

  FashionNet net;
  torch::optim::AdamW optimizer(
      net->parameters(),
      torch::optim::AdamWOptions(options.max_learning_rate).weight_decay(options.weight_decay));
  const auto train_size = static_cast<std::int64_t>(train.size());
  const std::int64_t batch_size = options.batch_size;
  const std::int64_t steps_per_epoch = (train_size + batch_size - 1) / batch_size;
  const std::int64_t total_steps = steps_per_epoch * options.epochs;
  std::vector<std::size_t> order(train.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::vector<float> batch_pixels(static_cast<std::size_t>(batch_size * kPixels));
  std::vector<std::int64_t> batch_labels(static_cast<std::size_t>(batch_size));
  std::int64_t step = 0;

  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto epoch_started = Clock::now();
    net->train();
    std::shuffle(order.begin(), order.end(), rng);
    double loss_sum = 0.0;
    std::int64_t correct = 0;
    for (std::int64_t start = 0; start < train_size; start += batch_size, ++step) {
      const std::int64_t n = std::min(batch_size, train_size - start);
      for (std::int64_t i = 0; i < n; ++i) {
        const std::size_t index = order[static_cast<std::size_t>(start + i)];
        augment_into(train.image(index), table, rng, batch_pixels.data() + i * kPixels);
        batch_labels[static_cast<std::size_t>(i)] = train.labels[index];
      }
      const torch::Tensor inputs = torch::from_blob(batch_pixels.data(), {n, 1, kSide, kSide});
      const torch::Tensor labels = torch::from_blob(batch_labels.data(), {n}, torch::kLong);
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options())
            .lr(learning_rate_at(step, total_steps, options.max_learning_rate));
      }
      optimizer.zero_grad();
      const torch::Tensor logits = net->forward(inputs);
      torch::Tensor loss = torch::nn::functional::cross_entropy(logits, labels);
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(n);
      correct += logits.argmax(1).eq(labels).sum().item<std::int64_t>();
    }
    EpochReport report;
    report.epoch = epoch;
    report.epochs = options.epochs;
    report.seconds = seconds_since(epoch_started);
    report.loss = loss_sum / static_cast<double>(train_size);
    report.train_accuracy = static_cast<double>(correct) / static_cast<double>(train_size);
    net->eval();
    report.test_accuracy = accuracy(
        batched(test_inputs, [&net](const torch::Tensor& b) { return net->forward(b); }), test_labels);
    result.training_seconds += report.seconds;
    result.epochs.push_back(report);
    if (on_epoch) on_epoch(report);
  }
  result.head_test_accuracy = result.epochs.back().test_accuracy;

  // Export, save, reload in a fresh module and compare with the trained net: the file is what ships.
  net->eval();
  torch::jit::Module exported = export_backbone(net);
  if (backbone_file.has_parent_path()) fs::create_directories(backbone_file.parent_path());
  exported.save(backbone_file.string());
  torch::jit::Module reloaded = torch::jit::load(backbone_file.string());
  reloaded.eval();
  const torch::Tensor probe = test_inputs.slice(0, 0, 2000);
  const torch::Tensor expected = batched(probe, [&net](const torch::Tensor& b) { return net->features(b); });
  const torch::Tensor actual = exported_features(reloaded, probe);
  if (actual.sizes() != expected.sizes()) {
    std::ostringstream shapes;
    shapes << "exported backbone " << backbone_file << " returns features of shape " << actual.sizes()
           << ", the trained net " << expected.sizes();
    throw std::runtime_error(shapes.str());
  }
  result.export_max_abs_difference = (actual - expected).abs().max().item<double>();
  const double tolerance = 1e-4 * std::max(1.0, expected.abs().max().item<double>());
  if (!(result.export_max_abs_difference <= tolerance)) {
    throw std::runtime_error(
        printf_string("exported backbone does not reproduce the trained net: max abs feature "
                      "difference %.3g exceeds %.3g",
                      result.export_max_abs_difference, tolerance) +
        " (" + backbone_file.string() + ")");
  }
  say(printf_string(
      "exported TorchScript backbone matches the trained net (max abs difference %.3g, tolerance %.3g)",
      result.export_max_abs_difference, tolerance));

  const torch::Tensor train_features = exported_features(reloaded, normalised_tensor(train, table));
  const torch::Tensor test_features = exported_features(reloaded, test_inputs);
  result.linear_probe_test_accuracy = linear_probe(train_features, train_labels, test_features, test_labels);
  say(printf_string("linear probe (softmax regression on the exported features): test accuracy %.4f",
                    result.linear_probe_test_accuracy));
  result.total_seconds = seconds_since(started);
  return result;
}

}  // namespace imgpipe
