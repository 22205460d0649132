#include "bad_input_corpus.hpp"

#include <zlib.h>
#include <catch2/catch.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

namespace imgpipe::test {
namespace fs = std::filesystem;

namespace {

const std::string kOverLimit =
    " pixels, over the limit of 100000000 pixels or 30000 per side (refused before decoding)";

void put_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void write_chunk(std::ofstream& out, const char* type, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> chunk;
  put_be32(chunk, static_cast<std::uint32_t>(data.size()));
  chunk.insert(chunk.end(), type, type + 4);
  chunk.insert(chunk.end(), data.begin(), data.end());
  const auto crc = crc32(0, chunk.data() + 4, static_cast<uInt>(chunk.size() - 4));
  put_be32(chunk, static_cast<std::uint32_t>(crc));
  out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(chunk.size()));
}

std::vector<std::uint8_t> png_header_only(std::uint32_t width, std::uint32_t height) {
  std::vector<std::uint8_t> bytes = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A,
                                     0,    0,   0,   13,  'I',  'H',  'D',  'R'};
  put_be32(bytes, width);
  put_be32(bytes, height);
  bytes.insert(bytes.end(), {8, 0, 0, 0, 0, 0, 0, 0, 0});
  return bytes;
}

}  // namespace

void write_png_bomb(const fs::path& file, std::uint32_t width, std::uint32_t height) {
  std::ofstream out(file, std::ios::binary);
  const std::uint8_t signature[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  out.write(reinterpret_cast<const char*>(signature), sizeof signature);
  std::vector<std::uint8_t> header;
  put_be32(header, width);
  put_be32(header, height);
  header.insert(header.end(), {8, 0, 0, 0, 0});  // 8-bit grey, deflate, no filter method, no interlace
  write_chunk(out, "IHDR", header);

  z_stream stream{};
  if (deflateInit(&stream, Z_BEST_SPEED) != Z_OK) throw std::runtime_error("deflateInit failed");
  std::vector<std::uint8_t> row(width + 1, 0);  // filter byte 0, then the pixels
  std::vector<std::uint8_t> compressed(1 << 20);
  auto drain = [&](int flush) {
    do {
      stream.next_out = compressed.data();
      stream.avail_out = static_cast<uInt>(compressed.size());
      if (deflate(&stream, flush) == Z_STREAM_ERROR) throw std::runtime_error("deflate failed");
      const std::size_t produced = compressed.size() - stream.avail_out;
      if (produced > 0)
        write_chunk(out, "IDAT", {compressed.begin(), compressed.begin() + static_cast<long>(produced)});
    } while (stream.avail_out == 0);
  };
  for (std::uint32_t y = 0; y < height; ++y) {
    stream.next_in = row.data();
    stream.avail_in = static_cast<uInt>(row.size());
    drain(y + 1 == height ? Z_FINISH : Z_NO_FLUSH);
  }
  deflateEnd(&stream);
  write_chunk(out, "IEND", {});
  REQUIRE(out.good());
}

BadInputCorpus::BadInputCorpus()
    : folder(dir.path() / "inputs"),
      named(dir.path() / "named-outside.jpg"),
      elsewhere(dir.path() / "elsewhere") {
  fs::create_directories(folder / "links");
  fs::create_directories(elsewhere);
  const fs::path data = source_dir() / "tests" / "data";
  auto add = [&](const std::string& name, const std::vector<std::uint8_t>& bytes,
                 const std::string& outcome) {
    write_file(folder / name, bytes);
    expected[(folder / name).string()] = outcome;
  };
  auto copy = [&](const fs::path& from, const std::string& name, const std::string& outcome) {
    fs::copy_file(from, folder / name);
    expected[(folder / name).string()] = outcome;
  };
  auto link = [&](const fs::path& target, const std::string& name, const std::string& outcome) {
    fs::create_symlink(target, folder / name);
    expected[(folder / name).string()] = outcome;
  };

  // Broken files.
  copy(skimage_photo("truncated.jpg"), "truncated.jpg", "truncated JPEG (no end-of-image marker)");
  auto jpeg = read_file(opencv_photo("fruits.jpg"));
  add("half.jpg", {jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2)},
      "truncated JPEG (no end-of-image marker)");
  auto png = read_file(skimage_photo("coffee.png"));
  add("half.png", {png.begin(), png.begin() + static_cast<long>(png.size() / 3)},
      "corrupt or truncated png (no IEND chunk at its end)");
  add("empty.jpg", {}, "empty file (0 bytes)");
  std::vector<std::uint8_t> noise(4096);
  std::mt19937 random(20240611);
  for (auto& byte : noise) byte = static_cast<std::uint8_t>(random());
  const std::uint8_t start[] = {0x13, 0x37, 0xC0, 0xDE, 0x00, 0xFF, 0x10, 0x01};  // like no image format
  std::copy(std::begin(start), std::end(start), noise.begin());
  add("random.jpg", noise, "not a supported image (first bytes 13 37 c0 de 00 ff 10 01)");
  const std::string text = "just some text\n";
  add("notes.jpg", {text.begin(), text.end()}, "not a supported image (first bytes 6a 75 73 74 20 73 6f 6d)");

  // Hostile sizes: a header claiming 10^10 pixels, and a (sparse) 1 GiB file.
  add("bomb.png", png_header_only(100000, 100000), "png header claims 100000x100000" + kOverLimit);
  { std::ofstream(folder / "huge.jpg"); }
  fs::resize_file(folder / "huge.jpg", std::uintmax_t{1} << 30);
  expected[(folder / "huge.jpg").string()] = "file of 1073741824 bytes is over the limit of 67108864 bytes";

  // Unusual but valid images: each is classified.
  copy(data / "cmyk.jpg", "cmyk.jpg", "");
  cv::Mat deep;
  cv::imread(opencv_photo("baboon.jpg").string()).convertTo(deep, CV_16UC3, 257.0);
  std::vector<std::uint8_t> deep_png;
  REQUIRE(cv::imencode(".png", deep, deep_png));
  add("deep16.png", deep_png, "");
  copy(skimage_photo("palette_color.png"), "palette.png", "");
  copy(data / "grey-alpha.png", "grey-alpha.png", "");
  copy(opencv_photo("fruits.jpg"), "actually-a-jpeg.png", "");  // content decides, not the name
  copy(opencv_photo("fruits.jpg"), "photo with spaces ünïcødé 写真.jpg", "");
  // A name that is not UTF-8 (Latin-1 "été"): the JSON line shows U+FFFD for the bytes it cannot encode.
  fs::copy_file(opencv_photo("baboon.jpg"), folder / "latin1-\xE9t\xE9.jpg");
  expected[(folder / "latin1-\uFFFDt\uFFFD.jpg").string()] = "";
  copy(data / "animated.gif", "animated.gif", "GIF images are not supported (OpenCV 4.6 has no GIF decoder)");

  // Camera photos: a progressive JPEG, one stored on its side (EXIF orientation 6), HEICs whole, cut short,
  // and claiming a huge size; and a file that is no image by its name (no line: named in the summary).
  copy(data / "progressive.jpg", "progressive.jpg", "");
  copy(data / "exif-orientation-6.jpg", "sideways.jpg", "");
  copy(data / "photo-64x48.heic", "phone.HEIC", "");
  copy(data / "irot.heic", "turned.heif", "");
  const auto heic = read_file(data / "photo-64x48.heic");
  add("cut.heic", {heic.begin(), heic.begin() + 100},
      "corrupt or truncated heif (no dimensions in its header; refused before decoding)");
  auto huge_heic = heic;
  const std::uint8_t side[] = {0x00, 0x01, 0x86, 0xA0};  // 100000, big-endian: each ispe's width and height
  for (std::size_t i = 0; i + 16 <= huge_heic.size(); ++i) {
    if (std::memcmp(&huge_heic[i], "ispe", 4) != 0) continue;
    for (std::size_t at : {i + 8, i + 12})
      std::copy(std::begin(side), std::end(side), huge_heic.begin() + static_cast<long>(at));
  }
  add("bomb.heic", huge_heic, "heif header claims 100000x100000" + kOverLimit);
  write_file(folder / "notes.txt", {'n', 'o', '\n'});

  // Symlinks: out of the folder, inside it, in a loop, to nothing, and a folder loop (not walked).
  fs::copy_file(opencv_photo("fruits.jpg"), elsewhere / "fruits.jpg");
  fs::copy_file(opencv_photo("baboon.jpg"), elsewhere / "baboon.jpg");
  link(elsewhere / "fruits.jpg", "links/outside.jpg", "symlink points outside the input folder");
  link("../cmyk.jpg", "links/inside.jpg", "");
  link("loop-b.jpg", "links/loop-a.jpg", "symlink loop (too many levels of symbolic links)");
  link("loop-a.jpg", "links/loop-b.jpg", "symlink loop (too many levels of symbolic links)");
  link("missing.jpg", "links/dangling.jpg", "broken symlink (its target does not exist)");
  fs::create_directory_symlink("..", folder / "links" / "up");
  // Named by the user as a file of its own, a symlink is followed wherever it points.
  fs::create_symlink(elsewhere / "baboon.jpg", named);
  expected[named.string()] = "";
}

}  // namespace imgpipe::test
