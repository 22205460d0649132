// Writes the committed seed corpus: fuzz/corpus/decode_message/ (small valid messages of every batch kind,
// plus one of each way the envelope is refused) and fuzz/corpus/decode_image/ (tiny images of every format
// OpenCV reads here, each behind the geometry byte that decode_image.cpp reads first).
//   make_seed_corpus OUTPUT_DIR      (scripts/fuzz --seed-corpus runs it)
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "imgpipe/messages/codec.hpp"

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

void write(const fs::path& file, const Bytes& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

imgpipe::JobRef job() {
  return {"3f2a9c0d11e04b7a", "imgpipe.results.3f2a9c0d11e04b7a", "fashion", "6d1c2b3a4f5e"};
}

Bytes tiny_jpeg() {
  cv::Mat image(3, 5, CV_8UC3, cv::Scalar(10, 200, 30));
  Bytes bytes;
  cv::imencode(".jpg", image, bytes);
  return bytes;
}

void write_messages(const fs::path& dir) {
  using namespace imgpipe;
  write(dir / "images-two", encode(ImageBatch{job(), {{"0", tiny_jpeg()}, {"1", {1, 2, 3}}}}));
  write(dir / "images-empty-item", encode(ImageBatch{{"j", "", "", ""}, {{"only", {}}}}));
  write(dir / "images-object-reference",
        encode(ImageBatch{job(), {{"0", {1, 2}}, {"1", {}, ObjectRef{"photos", "a b/é+.jpg", "\"e\"", 42}}}}));
  write(dir / "pixels-grey-and-rgb",
        encode(PixelBatch{job(), {{"0", 2, 2, 1, {0, 64, 128, 255}}, {"1", 1, 2, 3, {1, 2, 3, 4, 5, 6}}}}));
  write(dir / "features-two", encode(FeatureBatch{job(), {{"0", {0.5f, -1.0f, 3.25f}}, {"1", {1e-30f}}}}));
  write(
      dir / "results-ok-and-error",
      encode(ResultBatch{job(), "classify", {{"0", "Sneaker", 0.93, ""}, {"1", "", 0.0, "truncated JPEG"}}}));
  write(dir / "results-empty", encode(ResultBatch{job(), "preprocess", {}}));
  for (const Batch& empty :
       {Batch{ImageBatch{job(), {}}}, Batch{PixelBatch{job(), {}}}, Batch{FeatureBatch{job(), {}}}}) {
    write(dir / (std::string(to_string(kind_of(empty))) + "-empty"), encode(empty));
  }
  // The envelope's refusals: a later schema version, an unknown kind, flags set, bad magic.
  Bytes message = encode(ImageBatch{job(), {{"0", {9, 9}}}});
  Bytes version2 = message;
  version2[4] = 2;
  write(dir / "refused-version-2", version2);
  Bytes kind9 = message;
  kind9[6] = 9;
  write(dir / "refused-kind-9", kind9);
  Bytes flagged = message;
  flagged[7] = 1;
  write(dir / "refused-flags", flagged);
  Bytes magic = message;
  magic[0] = 'X';
  write(dir / "refused-magic", magic);
}

// The geometry byte of decode_image.cpp: bits 0-1 width, 2-3 height, 4 RGB, 5 centre crop, 6 linear, 7 antialiased linear.
void write_image(const fs::path& dir, const std::string& name, std::uint8_t geometry, const Bytes& file) {
  Bytes bytes{geometry};
  bytes.insert(bytes.end(), file.begin(), file.end());
  write(dir / name, bytes);
}

void write_images(const fs::path& dir) {
  cv::Mat bgr(3, 5, CV_8UC3);
  cv::randu(bgr, 0, 255);
  cv::Mat grey(4, 2, CV_8UC1);
  cv::randu(grey, 0, 255);
  cv::Mat bgra(2, 3, CV_8UC4, cv::Scalar(1, 2, 3, 128));
  cv::Mat deep(3, 3, CV_16UC1, cv::Scalar(40000));
  cv::Mat wide(1, 40, CV_8UC3, cv::Scalar(0, 0, 255));
  cv::Mat square(32, 32, CV_8UC3);  // OpenJPEG refuses fewer pixels than its resolution levels need
  cv::randu(square, 0, 255);
  struct Seed {
    const char* name;
    const cv::Mat& image;
    const char* extension;
  };
  const Seed seeds[] = {
      {"rgb.jpg", bgr, ".jpg"},   {"grey.jpg", grey, ".jpg"}, {"rgb.png", bgr, ".png"},
      {"grey.png", grey, ".png"}, {"rgba.png", bgra, ".png"}, {"deep16.png", deep, ".png"},
      {"wide.png", wide, ".png"}, {"rgb.bmp", bgr, ".bmp"},   {"grey.bmp", grey, ".bmp"},
      {"rgb.webp", bgr, ".webp"}, {"rgb.tiff", bgr, ".tiff"}, {"deep16.tiff", deep, ".tiff"},
      {"grey.pgm", grey, ".pgm"}, {"rgb.ppm", bgr, ".ppm"},   {"rgb.jp2", square, ".jp2"}};
  std::uint8_t geometry = 0;
  for (const auto& seed : seeds) {
    Bytes file;
    try {
      if (!cv::imencode(seed.extension, seed.image, file)) continue;
    } catch (const cv::Exception&) {
      continue;  // a codec this OpenCV lacks
    }
    // Spread the seeds over geometries: every resize mode, interpolation and channel count appears.
    write_image(dir, seed.name, geometry, file);
    geometry = static_cast<std::uint8_t>(geometry + 37);
  }
  // A 30000x1 strip for a 224x224 RGB centre crop (geometry 63): scaling the whole strip before cropping
  // once asked for 224 x 6.7 million pixels, 4.5 GB, from a 100-byte file.
  cv::Mat strip(1, 30000, CV_8UC3, cv::Scalar(255, 0, 0));
  strip.colRange(15000, 30000).setTo(cv::Scalar(0, 0, 255));
  Bytes strip_png;
  cv::imencode(".png", strip, strip_png);
  write_image(dir, "regression-strip-30000x1.png", 63, strip_png);
  // What the probe knows but refuses, and a file it does not recognise.
  write_image(dir, "gif-header", 0x12, {'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0, 0, 0});
  write_image(dir, "not-an-image", 0x00, {'h', 'e', 'l', 'l', 'o'});
  // Camera photos from tests/data: HEIC (a grid, and one turned by irot) for libheif and the box parser,
  // and JPEGs with an EXIF orientation (and a progressive one) for the APP1 parser and the turns.
  const struct {
    const char* name;
    std::uint8_t geometry;
  } fixtures[] = {{"photo-64x48.heic", 0x1F},
                  {"irot.heic", 0x42},
                  {"exif-orientation-6.jpg", 0x3E},
                  {"exif-orientation-7.jpg", 0x15},
                  {"progressive.jpg", 0x0A}};
  for (const auto& fixture : fixtures) {
    std::ifstream in(fs::path(IMGPIPE_FIXTURES_DIR) / fixture.name, std::ios::binary);
    const Bytes file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (file.empty()) throw std::runtime_error(std::string("cannot read the fixture ") + fixture.name);
    write_image(dir, fixture.name, fixture.geometry, file);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seed_corpus OUTPUT_DIR\n";
    return 2;
  }
  const fs::path root = argv[1];
  fs::create_directories(root / "decode_message");
  fs::create_directories(root / "decode_image");
  write_messages(root / "decode_message");
  write_images(root / "decode_image");
  return 0;
}
