#include "imgpipe/messages/codec.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

namespace imgpipe {
namespace {
using nlohmann::json;

constexpr char kMagic[4] = {'I', 'M', 'G', 'P'};
constexpr std::size_t kPrefixBytes = 12;  // magic, version, kind, flags, header length
constexpr std::size_t kPayloadLengthBytes = 8;

static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559,
              "features travel as IEEE-754 binary32");

template <typename T>
void put_le(std::vector<std::uint8_t>& out, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

template <typename T>
T get_le(const std::uint8_t* in) {
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    value = static_cast<T>(value | (static_cast<T>(in[i]) << (8 * i)));
  return value;
}

json job_to_json(const JobRef& job) {
  json out = {{"job_id", job.job_id},
              {"reply_to", job.reply_to},
              {"model", job.model},
              {"model_version", job.model_version}};
  if (job.top_k != 1) out["top_k"] = job.top_k;  // absent means 1, as in messages written before it existed
  return out;
}

// Collects the payload and the item headers that point into it.
class PayloadWriter {
 public:
  json add(const std::string& id, const void* data, std::size_t size) {
    const std::size_t offset = payload_.size();
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    payload_.insert(payload_.end(), bytes, bytes + size);
    return {{"id", id}, {"offset", offset}, {"length", size}};
  }
  std::vector<std::uint8_t>& payload() { return payload_; }

 private:
  std::vector<std::uint8_t> payload_;
};

struct Encoder {
  PayloadWriter& writer;
  json operator()(const ImageBatch& b) const {
    json items = json::array();
    for (const auto& image : b.images) {
      if (image.object) {
        // A reference has no payload slice at all: a reader from before references refuses the item
        // ("lacks field offset") instead of taking it for an empty file (docs/messages.md).
        const ObjectRef& object = *image.object;
        items.push_back({{"id", image.image_id},
                         {"object",
                          {{"bucket", object.bucket},
                           {"key", object.key},
                           {"etag", object.etag},
                           {"size", object.size}}}});
      } else {
        items.push_back(writer.add(image.image_id, image.bytes.data(), image.bytes.size()));
      }
    }
    return items;
  }
  json operator()(const PixelBatch& b) const {
    json items = json::array();
    for (const auto& image : b.images) {
      json item = writer.add(image.image_id, image.pixels.data(), image.pixels.size());
      item["width"] = image.width;
      item["height"] = image.height;
      item["channels"] = image.channels;
      items.push_back(std::move(item));
    }
    return items;
  }
  json operator()(const FeatureBatch& b) const {
    json items = json::array();
    for (const auto& feature : b.features) {
      json item = writer.add(feature.image_id, feature.values.data(), feature.values.size() * sizeof(float));
      item["dim"] = feature.values.size();
      items.push_back(std::move(item));
    }
    return items;
  }
  json operator()(const ResultBatch& b) const {
    json items = json::array();
    for (const auto& result : b.results) {
      json item = {{"id", result.image_id}};
      if (result.ok()) {
        item["label"] = result.label;
        item["score"] = result.score;
        if (!result.top.empty()) {
          json top = json::array();
          for (const auto& [label, score] : result.top) top.push_back({label, score});
          item["top"] = std::move(top);
        }
      } else {
        item["error"] = result.error;
      }
      items.push_back(std::move(item));
    }
    return items;
  }
};

// Reads fields of an untrusted header, turning every surprise into a MessageError with the item's position.
class HeaderReader {
 public:
  HeaderReader(const json& header, std::size_t payload_size, const CodecLimits& limits)
      : header_(header), payload_size_(payload_size), limits_(limits) {}

  JobRef job() const {
    const json& job = require(header_, "job", "header");
    if (!job.is_object()) throw MessageError("header field \"job\" is not an object");
    JobRef ref{string(job, "job_id", "job"), string(job, "reply_to", "job"), string(job, "model", "job"),
               string(job, "model_version", "job")};
    if (ref.job_id.empty()) throw MessageError("header job.job_id is empty");
    if (job.contains("top_k")) {
      const auto top_k = integer(job, "top_k", "job");
      if (top_k < 1 || top_k > kMaxTopK) {
        throw MessageError("header job.top_k is " + std::to_string(top_k) + ", outside 1.." +
                           std::to_string(kMaxTopK));
      }
      ref.top_k = static_cast<int>(top_k);
    }
    return ref;
  }

  const json& items() const {
    const json& items = require(header_, "items", "header");
    if (!items.is_array()) throw MessageError("header field \"items\" is not an array");
    if (items.size() > limits_.max_items) {
      throw MessageError("message has " + std::to_string(items.size()) + " items, over the limit of " +
                         std::to_string(limits_.max_items));
    }
    return items;
  }

  static std::string string(const json& object, const char* key, const std::string& where) {
    const json& value = require(object, key, where);
    if (!value.is_string()) throw MessageError(where + " field \"" + key + "\" is not a string");
    return value.get<std::string>();
  }

  static std::int64_t integer(const json& object, const char* key, const std::string& where) {
    const json& value = require(object, key, where);
    if (!value.is_number_integer()) throw MessageError(where + " field \"" + key + "\" is not an integer");
    return value.get<std::int64_t>();
  }

  // The payload slice of one item, after checking it lies inside the payload.
  std::pair<std::size_t, std::size_t> slice(const json& item, const std::string& where) const {
    const std::int64_t offset = integer(item, "offset", where);
    const std::int64_t length = integer(item, "length", where);
    if (offset < 0 || length < 0 || static_cast<std::uint64_t>(offset) > payload_size_ ||
        static_cast<std::uint64_t>(length) > payload_size_ - static_cast<std::uint64_t>(offset)) {
      throw MessageError(where + " points outside the payload (offset " + std::to_string(offset) +
                         ", length " + std::to_string(length) + ", payload " + std::to_string(payload_size_) +
                         " bytes)");
    }
    return {static_cast<std::size_t>(offset), static_cast<std::size_t>(length)};
  }

  const CodecLimits& limits() const { return limits_; }

 private:
  static const json& require(const json& object, const char* key, const std::string& where) {
    auto found = object.find(key);
    if (found == object.end()) throw MessageError(where + " lacks field \"" + key + "\"");
    return *found;
  }

  const json& header_;
  std::size_t payload_size_;
  const CodecLimits& limits_;
};

std::string item_where(std::size_t index) {
  return "item " + std::to_string(index);
}

// {"bucket", "key", "etag", "size"}: the object an images item names instead of carrying its bytes.
ObjectRef decode_object(const json& item, const std::string& where) {
  if (item.contains("offset") || item.contains("length")) {
    throw MessageError(where + " has both a payload slice and an object reference");
  }
  const json& object = item.at("object");
  const std::string what = where + " object";
  if (!object.is_object()) throw MessageError(what + " is not a JSON object");
  ObjectRef ref{HeaderReader::string(object, "bucket", what), HeaderReader::string(object, "key", what),
                HeaderReader::string(object, "etag", what), 0};
  if (ref.bucket.empty() || ref.key.empty()) throw MessageError(what + " has an empty bucket or key");
  const auto size = HeaderReader::integer(object, "size", what);
  if (size < 0) throw MessageError(what + " has a negative size");
  ref.size = static_cast<std::uint64_t>(size);
  return ref;
}

ImageBatch decode_images(const HeaderReader& reader, const std::uint8_t* payload) {
  ImageBatch batch{reader.job(), {}};
  const json& items = reader.items();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string where = item_where(i);
    if (items[i].contains("object")) {
      batch.images.push_back(
          {HeaderReader::string(items[i], "id", where), {}, decode_object(items[i], where)});
      continue;
    }
    auto [offset, length] = reader.slice(items[i], where);
    batch.images.push_back({HeaderReader::string(items[i], "id", where),
                            std::vector<std::uint8_t>(payload + offset, payload + offset + length)});
  }
  return batch;
}

PixelBatch decode_pixels(const HeaderReader& reader, const std::uint8_t* payload) {
  PixelBatch batch{reader.job(), {}};
  const json& items = reader.items();
  const int max_dimension = reader.limits().max_dimension;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string where = item_where(i);
    const auto width = HeaderReader::integer(items[i], "width", where);
    const auto height = HeaderReader::integer(items[i], "height", where);
    const auto channels = HeaderReader::integer(items[i], "channels", where);
    if (width < 1 || height < 1 || width > max_dimension || height > max_dimension) {
      throw MessageError(where + " has dimensions " + std::to_string(width) + "x" + std::to_string(height) +
                         " outside 1.." + std::to_string(max_dimension));
    }
    if (channels != 1 && channels != 3) {
      throw MessageError(where + " has " + std::to_string(channels) + " channels (1 or 3 expected)");
    }
    auto [offset, length] = reader.slice(items[i], where);
    const auto expected = static_cast<std::uint64_t>(width * height * channels);
    if (length != expected) {
      throw MessageError(where + " tensor has " + std::to_string(length) + " bytes but its header says " +
                         std::to_string(width) + "x" + std::to_string(height) + "x" +
                         std::to_string(channels) + " = " + std::to_string(expected));
    }
    batch.images.push_back({HeaderReader::string(items[i], "id", where), static_cast<int>(width),
                            static_cast<int>(height), static_cast<int>(channels),
                            std::vector<std::uint8_t>(payload + offset, payload + offset + length)});
  }
  return batch;
}

FeatureBatch decode_features(const HeaderReader& reader, const std::uint8_t* payload) {
  FeatureBatch batch{reader.job(), {}};
  const json& items = reader.items();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string where = item_where(i);
    const auto dim = HeaderReader::integer(items[i], "dim", where);
    if (dim < 1 || dim > reader.limits().max_feature_dim) {
      throw MessageError(where + " has feature dimension " + std::to_string(dim));
    }
    auto [offset, length] = reader.slice(items[i], where);
    if (length != static_cast<std::size_t>(dim) * sizeof(float)) {
      throw MessageError(where + " tensor has " + std::to_string(length) + " bytes but its header says " +
                         std::to_string(dim) + " floats");
    }
    FeatureVector feature{HeaderReader::string(items[i], "id", where),
                          std::vector<float>(static_cast<std::size_t>(dim))};
    std::memcpy(feature.values.data(), payload + offset, length);
    // A NaN or infinity would reach the classifier as a meaningless score (and a NaN never compares equal,
    // so not even a re-encoded copy would match): refuse it here with the position.
    for (std::size_t v = 0; v < feature.values.size(); ++v) {
      if (!std::isfinite(feature.values[v]))
        throw MessageError(where + " feature value " + std::to_string(v) + " is not a finite number");
    }
    batch.features.push_back(std::move(feature));
  }
  return batch;
}

// [[label, score], ...], at most kMaxTopK of them.
std::vector<LabelScore> decode_top(const json& top, const std::string& where) {
  if (!top.is_array() || top.size() > static_cast<std::size_t>(kMaxTopK)) {
    throw MessageError(where + " top is not an array of at most " + std::to_string(kMaxTopK) + " entries");
  }
  std::vector<LabelScore> out;
  for (const auto& entry : top) {
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number()) {
      throw MessageError(where + " top has an entry that is not [label, score]");
    }
    out.push_back({entry[0].get<std::string>(), entry[1].get<double>()});
  }
  return out;
}

ResultBatch decode_results(const HeaderReader& reader, const json& header) {
  ResultBatch batch{reader.job(), HeaderReader::string(header, "stage", "header"), {}};
  const json& items = reader.items();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string where = item_where(i);
    ImageResult result{HeaderReader::string(items[i], "id", where), "", 0.0, ""};
    if (items[i].contains("error")) {
      result.error = HeaderReader::string(items[i], "error", where);
      if (result.error.empty()) throw MessageError(where + " has an empty error");
    } else {
      result.label = HeaderReader::string(items[i], "label", where);
      const json& score = items[i].contains("score") ? items[i].at("score") : json();
      if (!score.is_number()) throw MessageError(where + " lacks a numeric score");
      result.score = score.get<double>();
      if (items[i].contains("top")) result.top = decode_top(items[i].at("top"), where);
    }
    batch.results.push_back(std::move(result));
  }
  return batch;
}

}  // namespace

std::vector<std::uint8_t> encode(const Batch& batch) {
  PayloadWriter writer;
  json header = {{"job", job_to_json(job_of(batch))}, {"items", std::visit(Encoder{writer}, batch)}};
  if (const auto* results = std::get_if<ResultBatch>(&batch)) header["stage"] = results->stage;
  const std::string header_text = header.dump();
  auto& payload = writer.payload();

  std::vector<std::uint8_t> out;
  out.reserve(kPrefixBytes + header_text.size() + kPayloadLengthBytes + payload.size());
  for (char c : kMagic) out.push_back(static_cast<std::uint8_t>(c));
  put_le<std::uint16_t>(out, kSchemaVersion);
  out.push_back(static_cast<std::uint8_t>(kind_of(batch)));
  out.push_back(0);  // flags, reserved
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(header_text.size()));
  out.insert(out.end(), header_text.begin(), header_text.end());
  put_le<std::uint64_t>(out, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Batch decode(std::span<const std::uint8_t> bytes, const CodecLimits& limits) {
  if (bytes.size() > limits.max_message_bytes) {
    throw MessageError("message of " + std::to_string(bytes.size()) + " bytes is over the limit of " +
                       std::to_string(limits.max_message_bytes));
  }
  if (bytes.size() < kPrefixBytes + kPayloadLengthBytes) {
    throw MessageError("message of " + std::to_string(bytes.size()) +
                       " bytes is too short to be an imgpipe batch");
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw MessageError("not an imgpipe message (bad magic bytes)");
  }
  const auto version = get_le<std::uint16_t>(bytes.data() + 4);
  if (version != kSchemaVersion) {
    throw MessageError("unsupported schema version " + std::to_string(version) +
                       " (this build reads version " + std::to_string(kSchemaVersion) + ")");
  }
  const std::uint8_t kind = bytes[6];
  if (kind < static_cast<std::uint8_t>(BatchKind::images) ||
      kind > static_cast<std::uint8_t>(BatchKind::results)) {
    throw MessageError("unknown batch kind " + std::to_string(kind));
  }
  if (bytes[7] != 0) throw MessageError("unknown flags " + std::to_string(bytes[7]));
  const auto header_size = get_le<std::uint32_t>(bytes.data() + 8);
  if (header_size > limits.max_header_bytes ||
      header_size > bytes.size() - kPrefixBytes - kPayloadLengthBytes) {
    throw MessageError("header length " + std::to_string(header_size) + " does not fit the message");
  }
  const std::uint8_t* payload_length_at = bytes.data() + kPrefixBytes + header_size;
  const auto payload_size = get_le<std::uint64_t>(payload_length_at);
  const std::size_t payload_room = bytes.size() - kPrefixBytes - header_size - kPayloadLengthBytes;
  if (payload_size != payload_room) {
    throw MessageError("payload length " + std::to_string(payload_size) + " does not match the " +
                       std::to_string(payload_room) + " bytes that follow the header");
  }

  json header;
  try {
    header = json::parse(bytes.data() + kPrefixBytes, bytes.data() + kPrefixBytes + header_size);
  } catch (const json::exception& error) {
    throw MessageError(std::string("header is not valid JSON: ") + error.what());
  }
  if (!header.is_object()) throw MessageError("header is not a JSON object");

  const HeaderReader reader(header, static_cast<std::size_t>(payload_size), limits);
  const std::uint8_t* payload = payload_length_at + kPayloadLengthBytes;
  try {
    switch (static_cast<BatchKind>(kind)) {
      case BatchKind::images:
        return decode_images(reader, payload);
      case BatchKind::pixels:
        return decode_pixels(reader, payload);
      case BatchKind::features:
        return decode_features(reader, payload);
      case BatchKind::results:
        return decode_results(reader, header);
    }
  } catch (const json::exception& error) {
    throw MessageError(std::string("header has an unexpected shape: ") + error.what());
  }
  throw MessageError("unknown batch kind " + std::to_string(kind));
}

SalvagedIds salvage_ids(std::span<const std::uint8_t> bytes, const CodecLimits& limits) {
  SalvagedIds salvaged;
  if (bytes.size() < kPrefixBytes + kPayloadLengthBytes ||
      std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0 ||
      get_le<std::uint16_t>(bytes.data() + 4) != kSchemaVersion) {
    return salvaged;  // another format, or a header layout this build does not know
  }
  const auto header_size = get_le<std::uint32_t>(bytes.data() + 8);
  if (header_size > limits.max_header_bytes || header_size > bytes.size() - kPrefixBytes) return salvaged;
  const json header =
      json::parse(bytes.data() + kPrefixBytes, bytes.data() + kPrefixBytes + header_size, nullptr, false);
  if (!header.is_object()) return salvaged;
  const auto job = header.find("job");
  if (job == header.end() || !job->is_object()) return salvaged;
  const auto job_id = job->find("job_id");
  if (job_id == job->end() || !job_id->is_string()) return salvaged;
  salvaged.job_id = job_id->get<std::string>();
  const auto items = header.find("items");
  if (items == header.end() || !items->is_array()) return salvaged;
  for (const auto& item : *items) {
    if (salvaged.image_ids.size() >= limits.max_items) break;
    if (!item.is_object()) continue;
    const auto id = item.find("id");
    if (id != item.end() && id->is_string()) salvaged.image_ids.push_back(id->get<std::string>());
  }
  return salvaged;
}

}  // namespace imgpipe
