// Versioned binary wire codec for Batch. Layout (all integers little-endian):
//   "IMGP" | u16 schema version | u8 kind | u8 flags(0) | u32 H | H bytes JSON header | u64 P | P bytes
//   payload
// The JSON header holds the JobRef and per-item metadata with offsets into the payload. See docs/messages.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "imgpipe/messages/batch.hpp"

namespace imgpipe {

inline constexpr std::uint16_t kSchemaVersion = 1;
// The most labels a result may list (JobRef::top_k).
inline constexpr int kMaxTopK = 1000;

struct CodecLimits {
  std::size_t max_message_bytes = 512u << 20;
  std::size_t max_header_bytes = 16u << 20;
  std::size_t max_items = 100000;
  int max_dimension = 16384;  // width/height of a pixel tensor
  int max_feature_dim = 1 << 20;
};

std::vector<std::uint8_t> encode(const Batch& batch);
Batch decode(std::span<const std::uint8_t> bytes, const CodecLimits& limits = {});

// What can still be read from a message that decode() refused (a tensor whose size disagrees with its
// header, a message over a worker's size limit, ...): the job id and the image ids in its JSON header,
// when its envelope is intact and of this schema version. Empty job_id when even that cannot be read.
// Only for answering those images with an error: nothing else in such a message is trusted.
struct SalvagedIds {
  std::string job_id;
  std::vector<std::string> image_ids;
};
SalvagedIds salvage_ids(std::span<const std::uint8_t> bytes, const CodecLimits& limits = {});

}  // namespace imgpipe
