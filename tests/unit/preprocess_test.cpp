#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>

#include <array>

#include "imgpipe/messages/codec.hpp"
#include "imgpipe/stages/preprocess.hpp"
#include "test_support.hpp"

using namespace imgpipe;

namespace {
InputSpec grey28() {
  return {28, 28, 1, ResizeMode::stretch, Interpolation::area, {0.5f}, {0.5f}};
}
InputSpec rgb224() {
  return {224,
          224,
          3,
          ResizeMode::center_crop,
          Interpolation::linear,
          {0.485f, 0.456f, 0.406f},
          {0.229f, 0.224f, 0.225f}};
}

std::vector<std::uint8_t> encode_as(const cv::Mat& image, const std::string& extension) {
  std::vector<std::uint8_t> bytes;
  REQUIRE(cv::imencode(extension, image, bytes));
  return bytes;
}

// A PNG whose header claims the given size: signature + IHDR only; nothing past the header is needed to
// refuse it.
std::vector<std::uint8_t> png_header_claiming(std::uint32_t width, std::uint32_t height) {
  std::vector<std::uint8_t> bytes = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A,
                                     0,    0,   0,   13,  'I',  'H',  'D',  'R'};
  for (std::uint32_t value : {width, height}) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<std::uint8_t>(value >> shift));
  }
  bytes.insert(bytes.end(), {8, 0, 0, 0, 0, 0, 0, 0, 0});
  return bytes;
}

// A little-endian TIFF with one strip of one byte, whose directory claims width x height 8-bit grey pixels.
std::vector<std::uint8_t> tiff_claiming(std::uint32_t width, std::uint32_t height) {
  std::vector<std::uint8_t> bytes = {'I', 'I', 42, 0, 8, 0, 0, 0};
  auto put16 = [&](std::uint32_t v) {
    for (int i = 0; i < 2; ++i) bytes.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  auto put32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  const std::vector<std::array<std::uint32_t, 3>> entries = {
      {256, 4, width}, {257, 4, height}, {258, 3, 8}, {259, 3, 1}, {262, 3, 1}, {273, 4, 8 + 2 + 9 * 12 + 4},
      {277, 3, 1},     {278, 4, height}, {279, 4, 1}};
  put16(static_cast<std::uint32_t>(entries.size()));
  for (const auto& [tag, type, value] : entries) {
    put16(tag);
    put16(type);
    put32(1);
    type == 3 ? (put16(value), put16(0)) : put32(value);
  }
  put32(0);
  bytes.push_back(0);
  return bytes;
}

std::string error_of(const std::vector<std::uint8_t>& bytes, DecodeLimits limits = {}) {
  try {
    decode_and_fit("x", bytes, grey28(), limits);
  } catch (const ImageError& error) {
    return error.what();
  }
  return "(decoded without error)";
}
}  // namespace

TEST_CASE("real photographs in every supported format decode to the model geometry", "[preprocess]") {
  const auto photo = test::read_file(test::opencv_photo("fruits.jpg"));
  const cv::Mat decoded = cv::imread(test::opencv_photo("fruits.jpg").string());
  REQUIRE_FALSE(decoded.empty());
  for (const std::string extension : {".jpg", ".png", ".bmp", ".webp", ".tiff"}) {
    CAPTURE(extension);
    const auto bytes = extension == ".jpg" ? photo : encode_as(decoded, extension);
    const PixelImage grey = decode_and_fit("id", bytes, grey28(), {});
    CHECK(grey.width == 28);
    CHECK(grey.height == 28);
    CHECK(grey.channels == 1);
    CHECK(grey.pixels.size() == 28u * 28u);
    const PixelImage rgb = decode_and_fit("id", bytes, rgb224(), {});
    CHECK(rgb.pixels.size() == 224u * 224u * 3u);
  }
}

TEST_CASE("colour order is RGB and grey is converted, not copied from one channel", "[preprocess]") {
  cv::Mat blue(10, 10, CV_8UC3, cv::Scalar(255, 0, 0));  // OpenCV stores BGR
  const PixelImage rgb =
      decode_and_fit("id", encode_as(blue, ".png"),
                     {10, 10, 3, ResizeMode::stretch, Interpolation::area, {0, 0, 0}, {1, 1, 1}}, {});
  CHECK(rgb.pixels[0] == 0);
  CHECK(rgb.pixels[2] == 255);
  const PixelImage grey = decode_and_fit("id", encode_as(blue, ".png"),
                                         {10, 10, 1, ResizeMode::stretch, Interpolation::area, {0}, {1}}, {});
  CHECK(grey.pixels[0] == 29);  // 0.114 * 255, the ITU-R BT.601 weight of blue
}

TEST_CASE("grey, alpha, 16-bit and palette inputs are handled", "[preprocess]") {
  SECTION("16-bit grey PNG is scaled to 8 bits") {
    cv::Mat deep(8, 8, CV_16UC1, cv::Scalar(65535));
    const PixelImage out = decode_and_fit("id", encode_as(deep, ".png"), grey28(), {});
    CHECK(out.pixels[0] == 255);
  }
  SECTION("RGBA PNG drops alpha") {
    cv::Mat rgba(8, 8, CV_8UC4, cv::Scalar(0, 0, 255, 0));
    const PixelImage out = decode_and_fit("id", encode_as(rgba, ".png"), rgb224(), {});
    CHECK(out.channels == 3);
    CHECK(out.pixels[0] == 255);
  }
  SECTION("grey photo to an RGB model") {
    const PixelImage out =
        decode_and_fit("id", test::read_file(test::skimage_photo("camera.png")), rgb224(), {});
    CHECK(out.pixels[0] == out.pixels[1]);
    CHECK(out.pixels[1] == out.pixels[2]);
  }
  SECTION("palette PNG") {
    const PixelImage out =
        decode_and_fit("id", test::read_file(test::skimage_photo("palette_color.png")), rgb224(), {});
    CHECK(out.pixels.size() == 224u * 224u * 3u);
  }
}

TEST_CASE("bad inputs fail with a precise reason", "[preprocess]") {
  const auto jpeg = test::read_file(test::opencv_photo("fruits.jpg"));
  const auto png = test::read_file(test::skimage_photo("coffee.png"));

  CHECK(error_of({}) == "empty file (0 bytes)");
  CHECK_THAT(error_of({'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'}),
             Catch::StartsWith("not a supported image (first bytes 68 65 6c 6c 6f 20 77 6f)"));
  CHECK(
      error_of(std::vector<std::uint8_t>(jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2))) ==
      "truncated JPEG (no end-of-image marker)");
  CHECK_THAT(error_of(test::read_file(test::skimage_photo("truncated.jpg"))), Catch::Contains("truncated"));
  CHECK_THAT(
      error_of(std::vector<std::uint8_t>(png.begin(), png.begin() + static_cast<long>(png.size() / 2))),
      Catch::Contains("corrupt or truncated png"));
  CHECK_THAT(error_of(png_header_claiming(100000, 100000)),
             Catch::Contains("claims 100000x100000 pixels, over the limit") &&
                 Catch::Contains("refused before decoding"));
  CHECK_THAT(error_of(png_header_claiming(0, 5)), Catch::Contains("impossible dimensions"));
  CHECK_THAT(error_of(tiff_claiming(100000, 100000)),
             Catch::Contains("tiff header claims 100000x100000 pixels"));
  DecodeLimits small;
  small.max_file_bytes = 1000;
  CHECK_THAT(error_of(png, small), Catch::Contains("over the limit of 1000 bytes"));
  CHECK_THAT(error_of({'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0}),
             Catch::Contains("GIF images are not supported"));
}

TEST_CASE("the preprocess stage passes good images on and fails bad ones alone", "[preprocess][stage]") {
  PreprocessStage stage{ModelStore(test::models_dir())};
  const ImageBatch batch{{"job", "reply", "fashion", ""},
                         {{"good", test::read_file(test::opencv_photo("fruits.jpg"))}, {"empty", {}}}};
  const StageOutput out = stage.process(batch);
  REQUIRE(out.next.has_value());
  const auto& pixels = std::get<PixelBatch>(*out.next);
  REQUIRE(pixels.images.size() == 1);
  CHECK(pixels.images[0].image_id == "good");
  CHECK(pixels.job.model_version.size() == 12);
  REQUIRE(out.errors.size() == 1);
  CHECK(out.errors[0].image_id == "empty");
  CHECK(out.errors[0].error == "empty file (0 bytes)");
}

TEST_CASE("an unknown model fails every image of the batch with the reason", "[preprocess][stage]") {
  PreprocessStage stage{ModelStore(test::models_dir())};
  const StageOutput out =
      stage.process(ImageBatch{{"job", "reply", "no-such-model", ""}, {{"a", {1}}, {"b", {2}}}});
  CHECK_FALSE(out.next.has_value());
  REQUIRE(out.errors.size() == 2);
  CHECK_THAT(out.errors[1].error, Catch::Contains("model \"no-such-model\" not found"));
}

TEST_CASE("a stage given the wrong kind of batch refuses it as a malformed message", "[preprocess][stage]") {
  PreprocessStage stage{ModelStore(test::models_dir())};
  CHECK_THROWS_AS(stage.process(FeatureBatch{{"job", "reply", "fashion", ""}, {}}), MessageError);
}

TEST_CASE("centre crop keeps the middle of the image at the model's aspect ratio", "[preprocess]") {
  // Three vertical bands, red | green | blue; the centre square is all green.
  cv::Mat bands(100, 200, CV_8UC3, cv::Scalar(0, 255, 0));
  bands.colRange(0, 50).setTo(cv::Scalar(0, 0, 255));
  bands.colRange(150, 200).setTo(cv::Scalar(255, 0, 0));
  const InputSpec square{10, 10, 3, ResizeMode::center_crop, Interpolation::area, {0, 0, 0}, {1, 1, 1}};
  const PixelImage out = decode_and_fit("id", encode_as(bands, ".png"), square, {});
  REQUIRE(out.pixels.size() == 10u * 10u * 3u);
  for (std::size_t i = 0; i < out.pixels.size(); i += 3) {
    CHECK(out.pixels[i] == 0);
    CHECK(out.pixels[i + 1] == 255);
    CHECK(out.pixels[i + 2] == 0);
  }
}

// A 30000x1 strip once made a 224x224 centre crop scale the whole strip first: 4.5 GB from a 173-byte PNG.
// The same input is a regression seed of fuzz/decode_image, replayed under a 1 GB malloc limit.
TEST_CASE("a long thin strip is centre-cropped from its middle, not scaled whole", "[preprocess]") {
  cv::Mat strip(1, 30000, CV_8UC3, cv::Scalar(0, 0, 255));
  strip.colRange(10000, 20000).setTo(cv::Scalar(0, 255, 0));
  strip.colRange(20000, 30000).setTo(cv::Scalar(255, 0, 0));
  const PixelImage out = decode_and_fit("id", encode_as(strip, ".png"), rgb224(), {});
  REQUIRE(out.pixels.size() == 224u * 224u * 3u);
  CHECK(out.pixels[0] == 0);
  CHECK(out.pixels[1] == 255);
  CHECK(out.pixels[out.pixels.size() - 2] == 255);
}

// Found by fuzz/decode_image: imdecode gave this JPEG 2000 file to its DICOM decoder (GDCM), whose assert
// aborted the process. The input is the fuzzer's, less its first byte (the fuzz target's geometry choice).
TEST_CASE("a file with a DICOM signature is refused before OpenCV hands it to GDCM", "[preprocess]") {
  auto bytes =
      test::read_file(test::source_dir() / "fuzz/corpus/decode_image/regression-jp2-with-dicom-signature");
  bytes.erase(bytes.begin());
  CHECK_THAT(error_of(bytes), Catch::Contains("DICOM signature"));
  const cv::Mat square(32, 32, CV_8UC3, cv::Scalar(1, 2, 3));
  CHECK(decode_and_fit("id", encode_as(square, ".jp2"), grey28(), {}).pixels.size() == 28u * 28u);
}
