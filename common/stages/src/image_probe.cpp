#include "imgpipe/stages/image_probe.hpp"

#include <cstdio>
#include <cstring>

namespace imgpipe {
namespace {

using Bytes = std::span<const std::uint8_t>;

bool starts_with(Bytes bytes, std::initializer_list<std::uint8_t> prefix) {
  return bytes.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), bytes.begin());
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::uint16_t be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
std::uint16_t le16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::int32_t le32(const std::uint8_t* p) {
  return static_cast<std::int32_t>(std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) |
                                   (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24));
}
int le24(const std::uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16);
}

ImageProbe sized(const char* format, std::int64_t width, std::int64_t height) {
  auto clamp = [](std::int64_t v) { return static_cast<int>(std::min<std::int64_t>(v, 0x7fffffff)); };
  return {format, clamp(width), clamp(height)};
}

ImageProbe probe_png(Bytes b) {
  // IHDR is always the first chunk: width and height at bytes 16..23.
  if (b.size() >= 24 && std::memcmp(b.data() + 12, "IHDR", 4) == 0)
    return sized("png", be32(&b[16]), be32(&b[20]));
  return {"png", std::nullopt, std::nullopt};
}

ImageProbe probe_jpeg(Bytes b) {
  // Walk the marker segments to the first start-of-frame, which holds the dimensions. Bytes that are not
  // a marker are skipped the way libjpeg skips them (it warns about "extraneous bytes" and decodes on), so
  // no stray byte can hide a frame header from this check that the decoder would then find.
  std::size_t at = 2;
  while (at + 4 <= b.size()) {
    if (b[at] != 0xFF || b[at + 1] == 0xFF) {  // extraneous byte, or fill byte before a marker
      ++at;
      continue;
    }
    const std::uint8_t marker = b[at + 1];
    if (marker == 0xD9) break;                                                     // end of image
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // no length field
      at += 2;
      continue;
    }
    const std::size_t length = be16(&b[at + 2]);
    const bool start_of_frame =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (start_of_frame && at + 9 <= b.size()) return sized("jpeg", be16(&b[at + 7]), be16(&b[at + 5]));
    if (length < 2) break;
    at += 2 + length;
  }
  return {"jpeg", std::nullopt, std::nullopt};
}

ImageProbe probe_bmp(Bytes b) {
  // The OS/2 core header (12 bytes) has 16-bit sides; every later header (40, 108, 124 bytes) 32-bit ones,
  // with a negative height for top-down rows.
  if (b.size() >= 22 && le32(&b[14]) == 12) return sized("bmp", le16(&b[18]), le16(&b[20]));
  if (b.size() >= 26) {
    const std::int64_t height = le32(&b[22]);
    return sized("bmp", le32(&b[18]), height < 0 ? -height : height);
  }
  return {"bmp", std::nullopt, std::nullopt};
}

ImageProbe probe_webp(Bytes b) {
  if (b.size() >= 30 && std::memcmp(&b[12], "VP8 ", 4) == 0)
    return sized("webp", le16(&b[26]) & 0x3FFF, le16(&b[28]) & 0x3FFF);
  if (b.size() >= 25 && std::memcmp(&b[12], "VP8L", 4) == 0) {
    const std::uint32_t bits = static_cast<std::uint32_t>(le32(&b[21]));
    return sized("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
  }
  if (b.size() >= 30 && std::memcmp(&b[12], "VP8X", 4) == 0)
    return sized("webp", le24(&b[24]) + 1, le24(&b[27]) + 1);
  return {"webp", std::nullopt, std::nullopt};
}

// Netpbm: "P5", whitespace or # comments, width, whitespace or comments, height, in ASCII.
ImageProbe probe_pnm(Bytes b) {
  std::size_t at = 2;
  auto number = [&]() -> std::optional<std::int64_t> {
    while (at < b.size()) {
      if (b[at] == '#') {
        while (at < b.size() && b[at] != '\n' && b[at] != '\r') ++at;
      } else if (b[at] == ' ' || b[at] == '\t' || b[at] == '\n' || b[at] == '\r' || b[at] == '\v' ||
                 b[at] == '\f') {
        ++at;
      } else {
        break;
      }
    }
    std::int64_t value = 0;
    std::size_t digits = 0;
    for (; at < b.size() && b[at] >= '0' && b[at] <= '9' && digits < 12; ++at, ++digits)
      value = value * 10 + (b[at] - '0');
    if (digits == 0) return std::nullopt;
    return value;
  };
  const auto width = number();
  const auto height = width ? number() : std::nullopt;
  if (!width || !height) return {"pnm", std::nullopt, std::nullopt};
  return sized("pnm", *width, *height);
}

// JPEG 2000: a bare codestream has its size in the SIZ segment right after the start marker; a JP2 file
// in the image header box (ihdr) inside the header superbox (jp2h).
ImageProbe probe_jpeg2000(Bytes b) {
  if (b[0] == 0xFF) {
    if (b.size() >= 24 && b[2] == 0xFF && b[3] == 0x51) {
      const std::int64_t width = std::int64_t{be32(&b[8])} - be32(&b[16]);
      const std::int64_t height = std::int64_t{be32(&b[12])} - be32(&b[20]);
      return sized("jpeg2000", width, height);
    }
    return {"jpeg2000", std::nullopt, std::nullopt};
  }
  // Boxes: 4-byte length (1: an 8-byte length follows the type; 0: to the end) and 4-byte type.
  auto find_box = [&](std::size_t from, std::size_t to, const char* type) -> std::optional<std::size_t> {
    std::size_t at = from;
    while (at + 8 <= to) {
      std::uint64_t length = be32(&b[at]);
      std::size_t header = 8;
      if (length == 1) {
        if (at + 16 > to) break;
        length = (std::uint64_t{be32(&b[at + 8])} << 32) | be32(&b[at + 12]);
        header = 16;
      } else if (length == 0) {
        length = to - at;
      }
      if (length < header) break;
      if (std::memcmp(&b[at + 4], type, 4) == 0) return at + header;
      if (length > to - at) break;
      at += static_cast<std::size_t>(length);
    }
    return std::nullopt;
  };
  if (const auto header_box = find_box(0, b.size(), "jp2h")) {
    if (const auto image_header = find_box(*header_box, b.size(), "ihdr");
        image_header && *image_header + 8 <= b.size())
      return sized("jpeg2000", be32(&b[*image_header + 4]), be32(&b[*image_header]));
  }
  return {"jpeg2000", std::nullopt, std::nullopt};
}

// The first image file directory holds ImageWidth (256) and ImageLength (257), as SHORT or LONG values.
ImageProbe probe_tiff(Bytes b) {
  const bool little = b[0] == 'I';
  auto u16 = [&](std::size_t at) { return little ? le16(&b[at]) : be16(&b[at]); };
  auto u32 = [&](std::size_t at) { return little ? static_cast<std::uint32_t>(le32(&b[at])) : be32(&b[at]); };
  ImageProbe probe{"tiff", std::nullopt, std::nullopt};
  if (b.size() < 8) return probe;
  const std::size_t directory = u32(4);
  if (directory + 2 > b.size()) return probe;
  const std::size_t entries = u16(directory);
  for (std::size_t i = 0; i < entries; ++i) {
    const std::size_t entry = directory + 2 + 12 * i;
    if (entry + 12 > b.size()) break;
    const std::uint16_t tag = u16(entry);
    const std::uint16_t type = u16(entry + 2);
    const std::int64_t value = type == 3   ? u16(entry + 8)
                               : type == 4 ? static_cast<std::int64_t>(u32(entry + 8))
                                           : -1;
    if (value < 0) continue;
    const int clamped = static_cast<int>(std::min<std::int64_t>(value, 0x7fffffff));
    if (tag == 256) probe.width = clamped;
    if (tag == 257) probe.height = clamped;
  }
  if (!probe.width || !probe.height) return {"tiff", std::nullopt, std::nullopt};
  return probe;
}

}  // namespace

std::optional<ImageProbe> probe_image(Bytes b) {
  if (starts_with(b, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) return probe_png(b);
  if (starts_with(b, {0xFF, 0xD8, 0xFF})) return probe_jpeg(b);
  if (starts_with(b, {'B', 'M'}) && b.size() >= 26) return probe_bmp(b);
  if (starts_with(b, {'R', 'I', 'F', 'F'}) && b.size() >= 12 && std::memcmp(&b[8], "WEBP", 4) == 0) {
    return probe_webp(b);
  }
  if (starts_with(b, {'G', 'I', 'F', '8'}) && b.size() >= 10) return sized("gif", le16(&b[6]), le16(&b[8]));
  if (starts_with(b, {'I', 'I', 42, 0}) || starts_with(b, {'M', 'M', 0, 42})) return probe_tiff(b);
  if (starts_with(b, {0x00, 0x00, 0x00, 0x0C, 'j', 'P', ' ', ' '}) ||
      starts_with(b, {0xFF, 0x4F, 0xFF, 0x51})) {
    return probe_jpeg2000(b);
  }
  if (starts_with(b, {'P'}) && b.size() > 2 && b[1] >= '1' && b[1] <= '6') return probe_pnm(b);
  return std::nullopt;
}

std::string describe_first_bytes(Bytes bytes, std::size_t count) {
  std::string out = "first bytes";
  char hex[4];
  for (std::size_t i = 0; i < std::min(count, bytes.size()); ++i) {
    std::snprintf(hex, sizeof hex, " %02x", bytes[i]);
    out += hex;
  }
  return out;
}

}  // namespace imgpipe
