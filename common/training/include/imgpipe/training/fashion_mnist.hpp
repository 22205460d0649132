// Fashion-MNIST as shipped by Debian's dataset-fashion-mnist: four gzip'd IDX files, 60k train and 10k test
// 28x28 grey images with labels 0..9. The reader is plain C++ (zlib only), so tools that just need the
// pixels or the class names do not pay for LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace imgpipe {

inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistSide = 28;
inline constexpr int kFashionMnistClasses = 10;

enum class FashionMnistSplit { train, test };

struct FashionMnistImages {
  // Row-major, image after image: images[i * 784 + y * 28 + x]. Labels are 0..9, one per image.
  std::vector<std::uint8_t> images;
  std::vector<std::uint8_t> labels;

  std::size_t size() const { return labels.size(); }
  const std::uint8_t* image(std::size_t index) const {
    return images.data() + index * kFashionMnistSide * kFashionMnistSide;
  }
};

// Reads one split from `dataset_dir` ({train,t10k}-{images-idx3,labels-idx1}-ubyte.gz). Throws
// std::runtime_error naming the file when it is missing, truncated, or not the IDX layout we expect.
FashionMnistImages load_fashion_mnist(const std::filesystem::path& dataset_dir, FashionMnistSplit split);

// The ten class names in label order, safe to use as folder names ("T-shirt_top", ..., "Ankle_boot").
const std::vector<std::string>& fashion_mnist_class_names();

struct FashionMnistExportCounts {
  std::size_t train = 0;
  std::size_t test = 0;
};

// Writes every image as an 8-bit grey PNG to out_dir/{train,test}/<class>/<split>-<index 5 digits>.png,
// a folder layout the `imgpipe` tools can classify and train from. Throws when a PNG cannot be written.
FashionMnistExportCounts export_fashion_mnist(const std::filesystem::path& dataset_dir,
                                              const std::filesystem::path& out_dir);

}  // namespace imgpipe
