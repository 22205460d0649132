// Decompression bombs in every format the decoders read, refused from their headers alone; and the image
// variants that must decode (CMYK, 16-bit, palette, grey+alpha) or fail with their reason (GIF).
#include <catch2/catch.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "imgpipe/stages/image_probe.hpp"
#include "imgpipe/stages/preprocess.hpp"
#include "test_support.hpp"

using namespace imgpipe;
using Bytes = std::vector<std::uint8_t>;

namespace {

InputSpec rgb(int side) {
  return {side, side, 3, ResizeMode::stretch, Interpolation::area, {0, 0, 0}, {1, 1, 1}};
}

std::filesystem::path fixture(const std::string& name) {
  return test::source_dir() / "tests" / "data" / name;
}

void put_be32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void put_le32(Bytes& out, std::uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void put_le16(Bytes& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}

// Baseline JPEG header up to its frame header (SOF0), after an APP0 segment and `junk` stray bytes.
Bytes jpeg_claiming(std::uint16_t width, std::uint16_t height, std::size_t junk = 0) {
  Bytes b = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
  b.insert(b.end(), junk, 0x42);
  b.insert(b.end(),
           {0xFF, 0xC0, 0, 11, 8, static_cast<std::uint8_t>(height >> 8), static_cast<std::uint8_t>(height),
            static_cast<std::uint8_t>(width >> 8), static_cast<std::uint8_t>(width), 1, 1, 0x11, 0});
  b.insert(b.end(), {0xFF, 0xD9});
  return b;
}

Bytes bmp_claiming(std::int32_t width, std::int32_t height) {
  Bytes b = {'B', 'M'};
  put_le32(b, 54 + 4);  // file size
  put_le32(b, 0);
  put_le32(b, 54);  // pixel data offset
  put_le32(b, 40);  // BITMAPINFOHEADER
  put_le32(b, static_cast<std::uint32_t>(width));
  put_le32(b, static_cast<std::uint32_t>(height));
  put_le16(b, 1);
  put_le16(b, 24);
  for (int i = 0; i < 6; ++i) put_le32(b, 0);
  b.insert(b.end(), 4, 0);
  return b;
}

// The OS/2 core header: 16-bit sides.
Bytes bmp_core(std::uint16_t width, std::uint16_t height) {
  Bytes b = {'B', 'M'};
  put_le32(b, 26 + 4);
  put_le32(b, 0);
  put_le32(b, 26);
  put_le32(b, 12);
  put_le16(b, width);
  put_le16(b, height);
  put_le16(b, 1);
  put_le16(b, 24);
  b.insert(b.end(), 4, 0);
  return b;
}

Bytes riff_webp(const char* chunk, const Bytes& payload) {
  Bytes b = {'R', 'I', 'F', 'F'};
  put_le32(b, static_cast<std::uint32_t>(4 + 8 + payload.size()));
  b.insert(b.end(), {'W', 'E', 'B', 'P'});
  b.insert(b.end(), chunk, chunk + 4);
  put_le32(b, static_cast<std::uint32_t>(payload.size()));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes webp_vp8x_claiming(std::uint32_t width, std::uint32_t height) {
  Bytes payload = {0, 0, 0, 0};
  for (std::uint32_t v : {width - 1, height - 1}) {
    for (int shift = 0; shift < 24; shift += 8) payload.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  return riff_webp("VP8X", payload);
}

Bytes webp_vp8l_claiming(std::uint32_t width, std::uint32_t height) {
  Bytes payload = {0x2F};
  put_le32(payload, (width - 1) | ((height - 1) << 14));
  payload.insert(payload.end(), 8, 0);
  return riff_webp("VP8L", payload);
}

Bytes webp_vp8_claiming(std::uint16_t width, std::uint16_t height) {
  Bytes payload = {0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A};  // frame tag, start code
  put_le16(payload, width);
  put_le16(payload, height);
  payload.insert(payload.end(), 8, 0);
  return riff_webp("VP8 ", payload);
}

Bytes j2k_claiming(std::uint32_t width, std::uint32_t height) {
  Bytes b = {0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0};
  put_be32(b, width);
  put_be32(b, height);
  for (int i = 0; i < 6; ++i) put_be32(b, 0);
  return b;
}

Bytes jp2_claiming(std::uint32_t width, std::uint32_t height) {
  Bytes b = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
  b.insert(b.end(), {0, 0, 0, 20, 'f', 't', 'y', 'p', 'j', 'p', '2', ' ', 0, 0, 0, 0, 'j', 'p', '2', ' '});
  put_be32(b, 8 + 8 + 14);
  b.insert(b.end(), {'j', 'p', '2', 'h'});
  put_be32(b, 8 + 14);
  b.insert(b.end(), {'i', 'h', 'd', 'r'});
  put_be32(b, height);
  put_be32(b, width);
  b.insert(b.end(), {0, 3, 7, 7, 0, 0});
  return b;
}

Bytes text(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

std::string error_of(const Bytes& bytes) {
  try {
    decode_and_fit("x", bytes, rgb(8), {});
  } catch (const ImageError& error) {
    return error.what();
  }
  return "(decoded without error)";
}

const std::string kOverLimit =
    " pixels, over the limit of 100000000 pixels or 30000 per side (refused before decoding)";

}  // namespace

TEST_CASE("a header claiming a huge image is refused before decoding, in every format with a decoder",
          "[preprocess][bomb]") {
  CHECK(error_of(jpeg_claiming(65000, 65000)) == "jpeg header claims 65000x65000" + kOverLimit);
  CHECK(error_of(bmp_claiming(100000, 100000)) == "bmp header claims 100000x100000" + kOverLimit);
  CHECK(error_of(bmp_claiming(20000, -20000)) == "bmp header claims 20000x20000" + kOverLimit);
  CHECK(error_of(bmp_core(60000, 60000)) == "bmp header claims 60000x60000" + kOverLimit);
  CHECK(error_of(webp_vp8x_claiming(16000, 16000)) == "webp header claims 16000x16000" + kOverLimit);
  CHECK(error_of(webp_vp8l_claiming(16000, 16000)) == "webp header claims 16000x16000" + kOverLimit);
  CHECK(error_of(webp_vp8_claiming(16000, 16000)) == "webp header claims 16000x16000" + kOverLimit);
  CHECK(error_of(j2k_claiming(50000, 50000)) == "jpeg2000 header claims 50000x50000" + kOverLimit);
  CHECK(error_of(jp2_claiming(50000, 50000)) == "jpeg2000 header claims 50000x50000" + kOverLimit);
  CHECK(error_of(text("P5\n# a comment\n50000 50000\n255\n")) ==
        "pnm header claims 50000x50000" + kOverLimit);
  // One side alone over the limit is enough, whatever the product.
  CHECK(error_of(bmp_claiming(40000, 1)) == "bmp header claims 40000x1" + kOverLimit);
}

TEST_CASE("the probe reads the dimensions the decoder would use, so none can slip past it",
          "[preprocess][bomb]") {
  // libjpeg skips stray bytes between segments with a warning and decodes on; the probe must as well.
  const auto hidden = probe_image(jpeg_claiming(65000, 65000, 7));
  REQUIRE(hidden);
  CHECK(hidden->width == 65000);
  CHECK(hidden->height == 65000);
  // Small images of each format report what the decoder reports.
  const cv::Mat photo = cv::imread(test::opencv_photo("fruits.jpg").string());
  REQUIRE_FALSE(photo.empty());
  for (const std::string extension : {".jpg", ".png", ".bmp", ".webp", ".tiff", ".pgm", ".ppm", ".jp2"}) {
    CAPTURE(extension);
    if (!cv::haveImageWriter("x" + extension)) continue;  // a codec this OpenCV lacks is no bomb risk either
    cv::Mat grey;
    cv::extractChannel(photo, grey, 0);
    Bytes bytes;
    REQUIRE(cv::imencode(extension, extension == ".pgm" ? grey : photo, bytes));
    const auto probe = probe_image(bytes);
    REQUIRE(probe);
    CHECK(probe->width == photo.cols);
    CHECK(probe->height == photo.rows);
  }
}

TEST_CASE("an image whose header gives no dimensions is refused rather than handed to a decoder",
          "[preprocess][bomb]") {
  // A JPEG with no frame header at all, and a PNG cut inside its IHDR chunk.
  CHECK(error_of({0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xD9}) ==
        "corrupt or truncated jpeg (no dimensions in its header; refused before decoding)");
  CHECK(error_of({0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0}) ==
        "corrupt or truncated png (no dimensions in its header; refused before decoding)");
  CHECK(error_of(text("P6 12")) ==
        "corrupt or truncated pnm (no dimensions in its header; refused before decoding)");
}

TEST_CASE("CMYK JPEG, 16-bit, palette and grey+alpha PNG decode to the right colours", "[preprocess]") {
  SECTION("CMYK JPEG (Adobe, inverted ink): cyan on the left, yellow on the right") {
    const PixelImage out = decode_and_fit("id", test::read_file(fixture("cmyk.jpg")), rgb(32), {});
    REQUIRE(out.channels == 3);
    const auto at = [&](int x, int c) { return out.pixels[static_cast<std::size_t>((16 * 32 + x) * 3 + c)]; };
    CHECK(at(4, 0) < 40);   // cyan: no red
    CHECK(at(4, 1) > 215);  // full green and blue
    CHECK(at(4, 2) > 215);
    CHECK(at(28, 0) > 215);  // yellow: red and green, no blue
    CHECK(at(28, 1) > 215);
    CHECK(at(28, 2) < 40);
  }
  SECTION("16-bit RGB PNG keeps its colour, scaled to 8 bits") {
    const cv::Mat deep(8, 8, CV_16UC3, cv::Scalar(0, 32896, 65535));  // BGR
    Bytes bytes;
    REQUIRE(cv::imencode(".png", deep, bytes));
    const PixelImage out = decode_and_fit("id", bytes, rgb(8), {});
    CHECK(out.pixels[0] == 255);
    CHECK(out.pixels[1] == 128);
    CHECK(out.pixels[2] == 0);
  }
  SECTION("grey+alpha PNG: the grey level, alpha dropped") {
    const PixelImage out = decode_and_fit("id", test::read_file(fixture("grey-alpha.png")), rgb(8), {});
    CHECK(out.pixels[0] == 200);
    CHECK(out.pixels[1] == 200);
    CHECK(out.pixels[2] == 200);
  }
  SECTION("palette PNG") {
    const PixelImage out =
        decode_and_fit("id", test::read_file(test::skimage_photo("green_palette.png")), rgb(8), {});
    CHECK(out.pixels.size() == 8u * 8u * 3u);
  }
}

TEST_CASE("an animated GIF is refused as unsupported, with the reason", "[preprocess]") {
  const auto gif = test::read_file(fixture("animated.gif"));
  const auto probe = probe_image(gif);
  REQUIRE(probe);
  CHECK(probe->format == "gif");
  CHECK(probe->width == 16);
  CHECK(error_of(gif) == "GIF images are not supported (OpenCV 4.6 has no GIF decoder)");
}
