#include "imgpipe/training/fashion_mnist.hpp"

#include <zlib.h>

#include <array>
#include <climits>
#include <cstdio>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <stdexcept>

namespace imgpipe {
namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kLabelMagic = 0x00000801;  // IDX: unsigned bytes, one dimension
constexpr std::uint32_t kImageMagic = 0x00000803;  // IDX: unsigned bytes, three dimensions
constexpr std::size_t kPixels = kFashionMnistSide * kFashionMnistSide;

struct GzFileCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};

// A gzip stream that closes itself; every read names the file when it fails.
class GzReader {
 public:
  explicit GzReader(fs::path path) : path_(std::move(path)), file_(gzopen(path_.c_str(), "rb")) {
    if (!file_)
      throw std::runtime_error("cannot open " + path_.string() + " (is dataset-fashion-mnist installed?)");
  }

  void read(void* out, std::size_t size, const char* what) {
    auto* bytes = static_cast<unsigned char*>(out);
    while (size > 0) {
      // gzread takes an unsigned int length: read large payloads in chunks.
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(size, 1u << 30));
      const int got = gzread(file_.get(), bytes, chunk);
      if (got <= 0) {
        int code = 0;
        const char* message = gzerror(file_.get(), &code);
        throw std::runtime_error(
            path_.string() + ": truncated or corrupt while reading " + what +
            (code != Z_OK && message ? std::string(" (") + message + ")" : std::string()));
      }
      bytes += got;
      size -= static_cast<std::size_t>(got);
    }
  }

  std::uint32_t read_big_endian_u32(const char* what) {
    std::array<unsigned char, 4> raw{};
    read(raw.data(), raw.size(), what);
    return (std::uint32_t{raw[0]} << 24) | (std::uint32_t{raw[1]} << 16) | (std::uint32_t{raw[2]} << 8) |
           std::uint32_t{raw[3]};
  }

  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  std::unique_ptr<gzFile_s, GzFileCloser> file_;
};

void expect(bool condition, const fs::path& file, const std::string& problem) {
  if (!condition) throw std::runtime_error(file.string() + ": " + problem);
}

std::vector<std::uint8_t> read_labels(const fs::path& file) {
  GzReader in(file);
  const std::uint32_t magic = in.read_big_endian_u32("the magic number");
  expect(magic == kLabelMagic, file,
         "not an IDX label file (magic " + std::to_string(magic) + ", expected 2049)");
  const std::uint32_t count = in.read_big_endian_u32("the label count");
  expect(count > 0 && count <= 1'000'000, file, "implausible label count " + std::to_string(count));
  std::vector<std::uint8_t> labels(count);
  in.read(labels.data(), labels.size(), "the labels");
  for (std::size_t i = 0; i < labels.size(); ++i) {
    expect(labels[i] < kFashionMnistClasses, file,
           "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) + " is outside 0..9");
  }
  return labels;
}

std::vector<std::uint8_t> read_images(const fs::path& file, std::size_t expected_count) {
  GzReader in(file);
  const std::uint32_t magic = in.read_big_endian_u32("the magic number");
  expect(magic == kImageMagic, file,
         "not an IDX image file (magic " + std::to_string(magic) + ", expected 2051)");
  const std::uint32_t count = in.read_big_endian_u32("the image count");
  const std::uint32_t rows = in.read_big_endian_u32("the row count");
  const std::uint32_t cols = in.read_big_endian_u32("the column count");
  expect(count == expected_count, file,
         "holds " + std::to_string(count) + " images but its label file holds " +
             std::to_string(expected_count));
  expect(rows == kFashionMnistSide && cols == kFashionMnistSide, file,
         "images are " + std::to_string(rows) + "x" + std::to_string(cols) + ", expected 28x28");
  std::vector<std::uint8_t> images(count * kPixels);
  in.read(images.data(), images.size(), "the pixels");
  return images;
}

// "00042": five digits cover the 60k train split.
std::string five_digits(std::size_t index) {
  std::array<char, 24> text{};
  std::snprintf(text.data(), text.size(), "%05zu", index);
  return text.data();
}

std::size_t export_split(const FashionMnistImages& data, const fs::path& split_dir,
                         const std::string& split) {
  const auto& names = fashion_mnist_class_names();
  for (const auto& name : names) fs::create_directories(split_dir / name);
  for (std::size_t i = 0; i < data.size(); ++i) {
    // cv::Mat over our buffer without copying; imwrite only reads it.
    const cv::Mat image(kFashionMnistSide, kFashionMnistSide, CV_8UC1,
                        const_cast<std::uint8_t*>(data.image(i)));
    const fs::path file = split_dir / names[data.labels[i]] / (split + "-" + five_digits(i) + ".png");
    if (!cv::imwrite(file.string(), image)) throw std::runtime_error("cannot write " + file.string());
  }
  return data.size();
}

}  // namespace

FashionMnistImages load_fashion_mnist(const fs::path& dataset_dir, FashionMnistSplit split) {
  const std::string prefix = split == FashionMnistSplit::train ? "train" : "t10k";
  FashionMnistImages data;
  data.labels = read_labels(dataset_dir / (prefix + "-labels-idx1-ubyte.gz"));
  data.images = read_images(dataset_dir / (prefix + "-images-idx3-ubyte.gz"), data.labels.size());
  return data;
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle_boot"};
  return names;
}

FashionMnistExportCounts export_fashion_mnist(const fs::path& dataset_dir, const fs::path& out_dir) {
  FashionMnistExportCounts counts;
  counts.train =
      export_split(load_fashion_mnist(dataset_dir, FashionMnistSplit::train), out_dir / "train", "train");
  counts.test =
      export_split(load_fashion_mnist(dataset_dir, FashionMnistSplit::test), out_dir / "test", "test");
  return counts;
}

}  // namespace imgpipe
