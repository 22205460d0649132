#include "imgpipe/stages/image_probe.hpp"

#include <algorithm>
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

// The Orientation tag (0x0112, one SHORT) in IFD0 of an APP1 "Exif" segment's TIFF structure, read within
// [begin, end) only. Any value but 1..8, or a structure cut short, reads as 1 (upright): a malformed tag must
// not turn a photo, and must never read outside the segment.
int exif_orientation(Bytes b, std::size_t begin, std::size_t end) {
  if (end > b.size() || begin > end || end - begin < 6 + 8) return 1;
  if (std::memcmp(&b[begin], "Exif\0\0", 6) != 0) return 1;
  const std::size_t tiff = begin + 6;
  const std::size_t size = end - tiff;
  const bool little = b[tiff] == 'I' && b[tiff + 1] == 'I';
  if (!little && !(b[tiff] == 'M' && b[tiff + 1] == 'M')) return 1;
  auto u16 = [&](std::size_t at) { return little ? le16(&b[tiff + at]) : be16(&b[tiff + at]); };
  auto u32 = [&](std::size_t at) {
    return little ? static_cast<std::uint32_t>(le32(&b[tiff + at])) : be32(&b[tiff + at]);
  };
  if (u16(2) != 42) return 1;
  const std::size_t directory = u32(4);
  if (directory > size - 2) return 1;
  const std::size_t entries = u16(directory);
  for (std::size_t i = 0; i < entries; ++i) {
    const std::size_t entry = directory + 2 + 12 * i;
    if (entry + 12 > size) break;
    if (u16(entry) != 0x0112) continue;
    const std::uint16_t value = u16(entry + 8);
    return u16(entry + 2) == 3 && u32(entry + 4) == 1 && value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

ImageProbe probe_jpeg(Bytes b) {
  // Walk the marker segments to the first start-of-frame, which holds the dimensions. Bytes that are not
  // a marker are skipped the way libjpeg skips them (it warns about "extraneous bytes" and decodes on), so
  // no stray byte can hide a frame header from this check that the decoder would then find. The first
  // APP1 Exif segment on the way gives the orientation (it comes before the frame in every JPEG/Exif file).
  int orientation = 1;
  bool exif_seen = false;
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
    if (start_of_frame && at + 9 <= b.size()) {
      ImageProbe probe = sized("jpeg", be16(&b[at + 7]), be16(&b[at + 5]));
      probe.orientation = orientation;
      return probe;
    }
    if (length < 2) break;
    if (marker == 0xE1 && !exif_seen && at + 4 + 6 <= b.size() &&
        std::memcmp(&b[at + 4], "Exif\0\0", 6) == 0) {
      exif_seen = true;
      orientation = exif_orientation(b, at + 4, std::min(b.size(), at + 2 + length));
    }
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

// ISO base media file format boxes (HEIF, AVIF): 4-byte size (1: an 8-byte size follows the type; 0: to the
// end), 4-byte type, content. A box that claims to run past `to` is cut at `to` (a truncated file): what is
// read from it is bounds-checked, and the decoder then reports the file as truncated.
struct Box {
  std::size_t start;    // its size field; the type follows at start + 4
  std::size_t content;  // after the header
  std::size_t end;
};

// The `index`-th box (0-based) in [from, to) whose type is `type` (nullptr: any type).
std::optional<Box> find_box(Bytes b, std::size_t from, std::size_t to, const char* type,
                            std::size_t index = 0) {
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
    const std::size_t end = length > to - at ? to : at + static_cast<std::size_t>(length);
    if (type == nullptr || std::memcmp(&b[at + 4], type, 4) == 0) {
      if (index == 0) return Box{at, at + header, end};
      --index;
    }
    at = end;
  }
  return std::nullopt;
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
  if (const auto header_box = find_box(b, 0, b.size(), "jp2h")) {
    if (const auto image_header = find_box(b, header_box->content, header_box->end, "ihdr");
        image_header && image_header->content + 8 <= b.size())
      return sized("jpeg2000", be32(&b[image_header->content + 4]), be32(&b[image_header->content]));
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

// The primary item's size, from its 'ispe' (image spatial extent) property: meta > pitm gives the primary
// item, meta > iprp > ipma lists the indices of its properties in meta > iprp > ipco. For a grid image (how
// phones store their photos: tiles of 512x512) that is the whole grid's size. Unknown when any of these is
// missing or cut short, and the image is then refused before libheif sees it.
ImageProbe probe_heif(Bytes b, const char* format) {
  const ImageProbe unknown{format, std::nullopt, std::nullopt};
  const auto meta = find_box(b, 0, b.size(), "meta");
  if (!meta || meta->content + 4 > meta->end) return unknown;
  const std::size_t children = meta->content + 4;  // meta is a full box: version and flags first
  const auto pitm = find_box(b, children, meta->end, "pitm");
  if (!pitm || pitm->content + 6 > pitm->end) return unknown;
  // pitm is a full box: version 0 holds a 16-bit item id, later versions a 32-bit one.
  const bool wide_id = b[pitm->content] != 0;
  if (wide_id && pitm->content + 8 > pitm->end) return unknown;
  const std::uint32_t primary = wide_id ? be32(&b[pitm->content + 4]) : be16(&b[pitm->content + 4]);
  const auto iprp = find_box(b, children, meta->end, "iprp");
  if (!iprp) return unknown;
  const auto ipco = find_box(b, iprp->content, iprp->end, "ipco");
  const auto ipma = find_box(b, iprp->content, iprp->end, "ipma");
  if (!ipco || !ipma || ipma->content + 8 > ipma->end) return unknown;
  const std::uint8_t version = b[ipma->content];
  const bool wide_index = (b[ipma->content + 3] & 1) != 0;
  const std::size_t id_size = version < 1 ? 2 : 4;
  const std::size_t index_size = wide_index ? 2 : 1;
  const std::uint32_t entry_count = be32(&b[ipma->content + 4]);
  std::size_t at = ipma->content + 8;
  for (std::uint32_t entry = 0; entry < entry_count; ++entry) {
    if (at + id_size + 1 > ipma->end) return unknown;
    const std::uint32_t item = id_size == 2 ? be16(&b[at]) : be32(&b[at]);
    const std::size_t associations = b[at + id_size];
    at += id_size + 1;
    if (associations * index_size > ipma->end - at) return unknown;
    if (item != primary) {
      at += associations * index_size;
      continue;
    }
    for (std::size_t i = 0; i < associations; ++i, at += index_size) {
      const std::size_t property = wide_index ? be16(&b[at]) & 0x7FFF : b[at] & 0x7F;
      if (property == 0) continue;  // 0: no property
      const auto box = find_box(b, ipco->content, ipco->end, nullptr, property - 1);
      if (!box || std::memcmp(&b[box->start + 4], "ispe", 4) != 0) continue;
      if (box->content + 12 > box->end) return unknown;
      return sized(format, be32(&b[box->content + 4]), be32(&b[box->content + 8]));
    }
    return unknown;
  }
  return unknown;
}

// HEIF files start with a file type box whose brands say what they hold. "mif1"/"msf1" are the generic
// HEIF image and sequence brands, also used alone; "avif" marks AV1 content, which this libheif decodes too.
// Anything else with a file type box (an MP4 video, a QuickTime movie) is not an image we read.
std::optional<ImageProbe> probe_isobmff(Bytes b) {
  const std::size_t length = be32(&b[0]);
  const std::size_t end = std::min(b.size(), length < 16 ? std::size_t{16} : length);
  bool heif = false;
  bool avif = false;
  for (std::size_t at = 8; at + 4 <= end; at += 4) {
    if (at == 12) continue;  // the minor version, between the major brand and the compatible ones
    static constexpr const char* heif_brands[] = {"heic", "heix", "hevc", "heim", "heis", "mif1", "msf1"};
    for (const char* brand : heif_brands) heif = heif || std::memcmp(&b[at], brand, 4) == 0;
    avif = avif || std::memcmp(&b[at], "avif", 4) == 0;
  }
  if (!heif && !avif) return std::nullopt;
  return probe_heif(b, avif ? "avif" : "heif");
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
  if (b.size() >= 16 && std::memcmp(&b[4], "ftyp", 4) == 0) return probe_isobmff(b);
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
