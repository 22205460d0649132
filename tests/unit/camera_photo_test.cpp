// Photos as cameras and phones write them: large JPEGs (decoded at reduced scale, yet to the same pixels),
// JPEGs stored sideways with an EXIF orientation, progressive JPEGs, and HEIC. The fixtures in tests/data
// come from one real photo (tests/data/make-fixtures); each decoded result is compared with that photo.
#include <catch2/catch.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "imgpipe/stages/image_decode.hpp"
#include "imgpipe/stages/image_probe.hpp"
#include "test_support.hpp"

using namespace imgpipe;
using Bytes = std::vector<std::uint8_t>;

namespace {

std::filesystem::path fixture(const std::string& name) {
  return test::source_dir() / "tests" / "data" / name;
}

InputSpec stretch(int width, int height, int channels) {
  InputSpec input{width, height, channels, ResizeMode::stretch, Interpolation::area, {}, {}};
  input.mean.assign(static_cast<std::size_t>(channels), 0.0f);
  input.std.assign(static_cast<std::size_t>(channels), 1.0f);
  return input;
}
InputSpec crop224() {  // torchvision's Resize(256) + CenterCrop(224)
  InputSpec input{224, 224, 3, ResizeMode::center_crop, Interpolation::linear, {0, 0, 0}, {1, 1, 1}};
  input.crop = 0.875;
  return input;
}
InputSpec grey28() {
  return stretch(28, 28, 1);
}

double mean_abs_difference(const PixelImage& a, const PixelImage& b) {
  REQUIRE(a.width == b.width);
  REQUIRE(a.height == b.height);
  REQUIRE(a.channels == b.channels);
  double sum = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(a.pixels[i] - b.pixels[i]);
  return sum / static_cast<double>(a.pixels.size());
}

// The same pixels mirrored left-right or top-bottom: what a wrongly applied orientation would give.
PixelImage mirrored(const PixelImage& image, int axis) {
  const cv::Mat view(image.height, image.width, CV_8UC(image.channels),
                     const_cast<std::uint8_t*>(image.pixels.data()));
  cv::Mat flipped;
  cv::flip(view, flipped, axis);
  PixelImage out = image;
  out.pixels.assign(flipped.data, flipped.data + flipped.total() * flipped.elemSize());
  return out;
}

Bytes encode_as(const cv::Mat& image, const std::string& extension, std::vector<int> params = {}) {
  Bytes bytes;
  REQUIRE(cv::imencode(extension, image, bytes, params));
  return bytes;
}

// A JPEG with an APP1 Exif segment (big-endian TIFF, IFD0 holding `entry`, 12 bytes) inserted after SOI.
Bytes with_exif_entry(const Bytes& jpeg, const Bytes& entry) {
  Bytes app1 = {0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1};
  app1.insert(app1.end(), entry.begin(), entry.end());
  app1.insert(app1.end(), {0, 0, 0, 0});
  const std::size_t length = app1.size() - 2;
  app1[2] = static_cast<std::uint8_t>(length >> 8);
  app1[3] = static_cast<std::uint8_t>(length);
  Bytes out(jpeg.size() + app1.size());
  const auto after_soi = std::copy(jpeg.begin(), jpeg.begin() + 2, out.begin());
  std::copy(jpeg.begin() + 2, jpeg.end(), std::copy(app1.begin(), app1.end(), after_soi));
  return out;
}
Bytes with_orientation(const Bytes& jpeg, std::uint8_t orientation) {
  return with_exif_entry(jpeg, {0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0});
}

// A camera-sized photo: fruits.jpg (512x480) scaled up to width x height.
cv::Mat camera_photo(int width, int height) {
  const cv::Mat fruits = cv::imread(test::opencv_photo("fruits.jpg").string());
  REQUIRE_FALSE(fruits.empty());
  cv::Mat large;
  cv::resize(fruits, large, cv::Size(width, height), 0, 0, cv::INTER_CUBIC);
  return large;
}

// Every occurrence of `from` (4 bytes) in `bytes` replaced by `to`; how many there were.
int replace_all(Bytes& bytes, const char* from, const char* to) {
  int count = 0;
  for (std::size_t i = 0; i + 4 <= bytes.size(); ++i) {
    if (std::memcmp(&bytes[i], from, 4) == 0) {
      std::memcpy(&bytes[i], to, 4);
      ++count;
    }
  }
  return count;
}

std::string error_of(const Bytes& bytes, const InputSpec& input = grey28()) {
  try {
    decode_and_fit("x", bytes, input, {});
  } catch (const ImageError& error) {
    return error.what();
  }
  return "(decoded without error)";
}

}  // namespace

TEST_CASE("a JPEG is decoded at the smallest libjpeg scale that still covers the model's input",
          "[camera][jpeg-scale]") {
  // 4000x3000 at 1/8 is 500x375; its centre at crop 0.875 is 328x328 >= 224: no upscaling anywhere.
  CHECK(jpeg_scale_denominator(4000, 3000, crop224()) == 8);
  CHECK(jpeg_scale_denominator(4000, 3000, grey28()) == 8);
  CHECK(jpeg_scale_denominator(3000, 4000, crop224()) == 8);
  // 1000x750: 1/2 leaves a 328-pixel centre, 1/4 (250x188) only 164 < 224.
  CHECK(jpeg_scale_denominator(1000, 750, crop224()) == 2);
  // The short side decides for center-crop: 2000x292 at 1/2 has 146 rows, under 256 (= 224 / 0.875).
  CHECK(jpeg_scale_denominator(2000, 292, crop224()) == 1);
  CHECK(jpeg_scale_denominator(2000, 512, crop224()) == 2);
  // libjpeg rounds up: 447 / 2 gives 224 rows, enough for 224; 446 / 2 gives 223.
  CHECK(jpeg_scale_denominator(447, 447, stretch(224, 224, 3)) == 2);
  CHECK(jpeg_scale_denominator(449, 446, stretch(224, 224, 3)) == 1);
  // Stretch needs both sides: 28 columns from 230 at 1/8 (29) but 27 rows from 215 (ceil 26.9 = 27).
  CHECK(jpeg_scale_denominator(230, 215, grey28()) == 4);
  CHECK(jpeg_scale_denominator(224, 224, crop224()) == 1);  // small images as they are
  CHECK(jpeg_scale_denominator(1, 1, grey28()) == 1);
  CHECK(jpeg_scale_denominator(0x7fffffff, 0x7fffffff, grey28()) == 8);  // no overflow rounding up
}

TEST_CASE("a large JPEG decoded at reduced scale gives nearly the pixels of a full-size decode", "[camera]") {
  // The same pixels as PNG are decoded at full size (only JPEG has DCT scaling): the reference.
  const cv::Mat photo = camera_photo(2000, 1500);
  const Bytes jpeg = encode_as(photo, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 95});
  const Bytes png = encode_as(photo, ".png", {cv::IMWRITE_PNG_COMPRESSION, 1});
  InputSpec crop224_area = crop224();
  crop224_area.interpolation = Interpolation::area;
  // Linear interpolation from the full-size image skips most of its pixels (aliasing) where libjpeg's
  // scaling averages them, so that pair differs most; with area both average.
  for (const auto& [input, within] : {std::pair{crop224(), 5.0}, std::pair{crop224_area, 4.0},
                                      std::pair{grey28(), 3.0}, std::pair{stretch(300, 200, 3), 3.0}}) {
    CAPTURE(input.width, input.channels, input.interpolation == Interpolation::area);
    const PixelImage reduced = decode_and_fit("jpeg", jpeg, input, {});
    const PixelImage full = decode_and_fit("png", png, input, {});
    CHECK(mean_abs_difference(reduced, full) < within);
    CHECK(mean_abs_difference(reduced, mirrored(full, 1)) > 20);  // the comparison can tell images apart
  }
}

TEST_CASE("a JPEG stored sideways is decoded upright, for each of the 8 EXIF orientations",
          "[camera][exif]") {
  const auto upright = test::read_file(fixture("photo-64x48.png"));
  for (const InputSpec& input : {stretch(64, 48, 3), stretch(64, 48, 1), stretch(32, 24, 3)}) {
    const PixelImage reference = decode_and_fit("png", upright, input, {});
    for (int orientation = 1; orientation <= 8; ++orientation) {
      CAPTURE(orientation, input.width, input.channels);
      const auto bytes = test::read_file(fixture("exif-orientation-" + std::to_string(orientation) + ".jpg"));
      const auto probe = probe_image(bytes);
      REQUIRE(probe);
      CHECK(probe->orientation == orientation);
      CHECK(*probe->width == (orientation >= 5 ? 48 : 64));  // as stored
      const PixelImage decoded = decode_and_fit("jpeg", bytes, input, {});
      CHECK(mean_abs_difference(decoded, reference) < 6);  // JPEG at 64x48: chroma subsampling shows
      CHECK(mean_abs_difference(decoded, mirrored(reference, 1)) > 20);
      CHECK(mean_abs_difference(decoded, mirrored(reference, 0)) > 20);
    }
  }
}

TEST_CASE("a large sideways JPEG is scaled by its upright size and decoded upright", "[camera][exif]") {
  // Stored as a phone held upright stores it: 1500x2000 pixels, a quarter turn off, tag 6 or 8.
  const cv::Mat upright = camera_photo(2000, 1500);
  const PixelImage reference = decode_and_fit(
      "png", encode_as(upright, ".png", {cv::IMWRITE_PNG_COMPRESSION, 1}), stretch(200, 150, 3), {});
  for (const auto& [orientation, turn] :
       {std::pair{6, cv::ROTATE_90_COUNTERCLOCKWISE}, std::pair{8, cv::ROTATE_90_CLOCKWISE}}) {
    CAPTURE(orientation);
    cv::Mat stored;
    cv::rotate(upright, stored, turn);
    const Bytes jpeg = with_orientation(encode_as(stored, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 95}),
                                        static_cast<std::uint8_t>(orientation));
    CHECK(probe_image(jpeg)->orientation == orientation);
    // 1/4 of 2000x1500 is 500x375, still >= 200x150; 1/8 (250x188) too; the stored 1500x2000 at 1/8
    // (188x250) would not be, so the upright size must be what decides.
    CHECK(jpeg_scale_denominator(2000, 1500, stretch(200, 150, 3)) == 8);
    const PixelImage decoded = decode_and_fit("jpeg", jpeg, stretch(200, 150, 3), {});
    CHECK(mean_abs_difference(decoded, reference) < 3.0);
    CHECK(mean_abs_difference(decoded, mirrored(reference, 0)) > 20);
  }
}

TEST_CASE("a malformed EXIF orientation leaves the photo as stored, and is never read past its segment",
          "[camera][exif]") {
  const auto photo = test::read_file(fixture("exif-orientation-1.jpg"));
  auto orientation_of = [](const Bytes& bytes) { return probe_image(bytes)->orientation; };
  CHECK(orientation_of(with_orientation(photo, 6)) == 6);
  CHECK(orientation_of(with_orientation(photo, 0)) == 1);
  CHECK(orientation_of(with_orientation(photo, 9)) == 1);
  // Wrong type (LONG), wrong count, another tag: ignored.
  CHECK(orientation_of(with_exif_entry(photo, {0x01, 0x12, 0, 4, 0, 0, 0, 1, 0, 6, 0, 0})) == 1);
  CHECK(orientation_of(with_exif_entry(photo, {0x01, 0x12, 0, 3, 0, 0, 0, 2, 0, 6, 0, 0})) == 1);
  CHECK(orientation_of(with_exif_entry(photo, {0x01, 0x13, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0})) == 1);
  // An IFD offset past the segment's end, and an entry count that runs past it.
  Bytes far = with_orientation(photo, 6);
  far[2 + 4 + 6 + 7] = 200;  // IFD0 offset 8 -> 200
  CHECK(orientation_of(far) == 1);
  Bytes many = with_orientation(photo, 6);
  many[2 + 4 + 6 + 8] = 0x7F;  // 32513 entries announced; the first is still the orientation
  CHECK(orientation_of(many) == 6);
  many[2 + 4 + 6 + 10] = 0;  // first entry's tag no longer 0x0112: the rest is past the segment
  CHECK(orientation_of(many) == 1);
  // The frame header still gives the size, so each decodes as stored.
  CHECK(decode_and_fit("x", far, stretch(64, 48, 3), {}).pixels.size() == 64u * 48u * 3u);
}

TEST_CASE("progressive, CMYK and greyscale JPEGs decode to the photo's pixels", "[camera]") {
  const PixelImage reference =
      decode_and_fit("png", test::read_file(fixture("photo-64x48.png")), stretch(64, 48, 3), {});
  const PixelImage progressive =
      decode_and_fit("jpeg", test::read_file(fixture("progressive.jpg")), stretch(64, 48, 3), {});
  CHECK(mean_abs_difference(progressive, reference) < 7);  // quality 90

  // cmyk.jpg: left half cyan ink, right half yellow ink (its RGB colours: image_probe_test.cpp), to a grey
  // model, which has libjpeg decode it to grey: cyan 0.587 G + 0.114 B = 179, yellow 0.299 R + 0.587 G = 226.
  const PixelImage grey =
      decode_and_fit("cmyk", test::read_file(fixture("cmyk.jpg")), stretch(32, 32, 1), {});
  CHECK(grey.pixels[16 * 32 + 4] > 165);
  CHECK(grey.pixels[16 * 32 + 4] < 195);
  CHECK(grey.pixels[16 * 32 + 28] > 210);

  // A large greyscale JPEG, reduced, to an RGB model: three equal channels.
  cv::Mat grey_photo;
  cv::cvtColor(camera_photo(1600, 1200), grey_photo, cv::COLOR_BGR2GRAY);
  const PixelImage from_grey = decode_and_fit("grey", encode_as(grey_photo, ".jpg"), crop224(), {});
  for (std::size_t i = 0; i < from_grey.pixels.size(); i += 3) {
    REQUIRE(from_grey.pixels[i] == from_grey.pixels[i + 1]);
    REQUIRE(from_grey.pixels[i + 1] == from_grey.pixels[i + 2]);
  }
}

TEST_CASE("a HEIC photo decodes through libheif to nearly the pixels it was made from", "[camera][heif]") {
  const auto heic = test::read_file(fixture("photo-64x48.heic"));
  const auto probe = probe_image(heic);
  REQUIRE(probe);
  CHECK(probe->format == "heif");
  CHECK(*probe->width == 64);  // the primary item's (a grid of heif-enc's tiles) ispe
  CHECK(*probe->height == 48);
  const auto upright = test::read_file(fixture("photo-64x48.png"));
  for (const InputSpec& input : {stretch(64, 48, 3), stretch(64, 48, 1), crop224()}) {
    CAPTURE(input.width, input.channels);
    const PixelImage reference = decode_and_fit("png", upright, input, {});
    const PixelImage decoded = decode_and_fit("heic", heic, input, {});
    CHECK(mean_abs_difference(decoded, reference) < 4);
    CHECK(mean_abs_difference(decoded, mirrored(reference, 1)) > 20);
  }
}

TEST_CASE("a HEIC stored on its side with an irot property is decoded upright", "[camera][heif]") {
  const auto heic = test::read_file(fixture("irot.heic"));
  CHECK(*probe_image(heic)->width == 48);  // as stored: the ispe is before the rotation
  const PixelImage reference =
      decode_and_fit("png", test::read_file(fixture("photo-64x48.png")), stretch(64, 48, 3), {});
  const PixelImage decoded = decode_and_fit("heic", heic, stretch(64, 48, 3), {});
  CHECK(mean_abs_difference(decoded, reference) < 4);
  CHECK(mean_abs_difference(decoded, mirrored(reference, 0)) > 20);
}

TEST_CASE("truncated, oversized and dimensionless HEICs fail with their reason before or in libheif",
          "[camera][heif]") {
  const auto heic = test::read_file(fixture("photo-64x48.heic"));
  // Cut in its image data (mdat, at the end): the structure reads, the decoder finds the data missing.
  const Bytes half(heic.begin(), heic.begin() + static_cast<long>(heic.size() * 3 / 4));
  CHECK_THAT(error_of(half), Catch::StartsWith("corrupt, truncated or unsupported heif (libheif could not"));
  // Cut inside its header: no size to check, so refused before libheif.
  const Bytes head(heic.begin(), heic.begin() + 100);
  CHECK(error_of(head) == "corrupt or truncated heif (no dimensions in its header; refused before decoding)");
  // An ispe claiming 100000x100000 (every ispe: the grid's and its tile's).
  Bytes huge = heic;
  for (std::size_t i = 0; i + 16 <= huge.size(); ++i) {
    if (std::memcmp(&huge[i], "ispe", 4) != 0) continue;
    for (std::size_t side : {8u, 12u}) {
      const std::uint32_t value = 100000;
      for (int byte = 0; byte < 4; ++byte)
        huge[i + side + byte] = static_cast<std::uint8_t>(value >> (8 * (3 - byte)));
    }
  }
  CHECK_THAT(error_of(huge), Catch::StartsWith("heif header claims 100000x100000 pixels, over the limit") &&
                                 Catch::EndsWith("(refused before decoding)"));
  // No ispe at all: refused, like any image without dimensions.
  Bytes no_size = heic;
  REQUIRE(replace_all(no_size, "ispe", "xxxx") >= 1);
  CHECK(error_of(no_size) ==
        "corrupt or truncated heif (no dimensions in its header; refused before decoding)");
  // A file type box of another kind (an MP4 video) is no image of ours.
  Bytes video = heic;
  REQUIRE(replace_all(video, "heic", "isom") >= 1);
  REQUIRE(replace_all(video, "mif1", "mp41") >= 1);
  REQUIRE(replace_all(video, "miaf", "avc1") >= 1);
  CHECK_THAT(error_of(video),
             Catch::StartsWith("not a supported image (first bytes 00 00 00 1c 66 74 79 70)"));
}

// Hidden (not run by default); docs/benchmarks.md, "Decoding camera photos", has the command and figures.
TEST_CASE("decode_and_fit time of a 12-megapixel JPEG", "[.bench]") {
  const Bytes jpeg = encode_as(camera_photo(4000, 3000), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90});
  const int runs = std::getenv("IMGPIPE_BENCH_RUNS") ? std::atoi(std::getenv("IMGPIPE_BENCH_RUNS")) : 9;
  for (const auto& [name, input] :
       {std::pair{"224x224 RGB center-crop 0.875", crop224()}, std::pair{"28x28 grey stretch", grey28()}}) {
    std::vector<double> ms;
    for (int run = 0; run < runs; ++run) {
      const auto start = std::chrono::steady_clock::now();
      const PixelImage out = decode_and_fit("bench", jpeg, input, {});
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      REQUIRE(out.width == input.width);
    }
    std::sort(ms.begin(), ms.end());
    std::cout << "4000x3000 JPEG (" << jpeg.size() << " bytes) -> " << name << ": median "
              << ms[ms.size() / 2] << " ms, min " << ms.front() << " ms, max " << ms.back() << " ms over "
              << runs << " runs\n";
  }
}
