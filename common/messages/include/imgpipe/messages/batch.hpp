// The messages that travel between stages. Stage code sees only these types; how they move
// (RabbitMQ or in-process) is decided at the edge. The wire form is in codec.hpp and docs/messages.md.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace imgpipe {

// Which job a batch belongs to and where its results go. Travels unchanged through every stage,
// except model_version, which the first stage that loads the model stamps.
struct JobRef {
  std::string job_id;
  std::string reply_to;       // result queue; empty in local mode
  std::string model;          // model name in the store
  std::string model_version;  // digest of the model's model.json, empty until a stage loaded it
  int top_k = 1;              // how many of the best labels each result lists (1: the winner alone)
  bool operator==(const JobRef&) const = default;
};

// An object in S3-compatible storage as the publisher listed it (the claim-check pattern): the first stage
// fetches its bytes itself, and only if it is still this version (the ETag), at most this size.
struct ObjectRef {
  std::string bucket;
  std::string key;
  std::string etag;  // as the server gave it, quotes included ("\"9b2cf535f27731c974343645a3985328\"")
  std::uint64_t size = 0;
  bool operator==(const ObjectRef&) const = default;
};

// Encoded file bytes as read by the publisher (JPEG, PNG, ...), or a reference to an object whose bytes the
// first stage fetches (then `bytes` is empty until it did). Messages carry bytes or references, never paths.
struct EncodedImage {
  std::string image_id;
  std::vector<std::uint8_t> bytes;
  std::optional<ObjectRef> object{};
  bool operator==(const EncodedImage&) const = default;
};

// Decoded, resized pixels in the model's input geometry: height x width x channels, uint8, HWC order.
struct PixelImage {
  std::string image_id;
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;
  bool operator==(const PixelImage&) const = default;
};

struct FeatureVector {
  std::string image_id;
  std::vector<float> values;
  bool operator==(const FeatureVector&) const = default;
};

struct LabelScore {
  std::string label;
  double score = 0.0;
  bool operator==(const LabelScore&) const = default;
};

// The final word on one image: a label with its score, or an error with a reason (error non-empty).
struct ImageResult {
  std::string image_id;
  std::string label;
  double score = 0.0;
  std::string error;
  std::vector<LabelScore> top{};  // the job's top_k best labels, best first, when it asked for more than one
  bool ok() const { return error.empty(); }
  bool operator==(const ImageResult&) const = default;
};

struct ImageBatch {
  JobRef job;
  std::vector<EncodedImage> images;
  bool operator==(const ImageBatch&) const = default;
};

struct PixelBatch {
  JobRef job;
  std::vector<PixelImage> images;
  bool operator==(const PixelBatch&) const = default;
};

struct FeatureBatch {
  JobRef job;
  std::vector<FeatureVector> features;
  bool operator==(const FeatureBatch&) const = default;
};

struct ResultBatch {
  JobRef job;
  std::string stage;  // which stage produced these results ("classify", or the stage that failed them)
  std::vector<ImageResult> results;
  bool operator==(const ResultBatch&) const = default;
};

using Batch = std::variant<ImageBatch, PixelBatch, FeatureBatch, ResultBatch>;

enum class BatchKind : std::uint8_t { images = 1, pixels = 2, features = 3, results = 4 };

BatchKind kind_of(const Batch& batch);
const JobRef& job_of(const Batch& batch);
std::size_t item_count(const Batch& batch);
const char* to_string(BatchKind kind);

// A message that cannot be decoded, or a batch handed to a stage that does not take its kind; what() says
// why. Such messages are dead-lettered, never retried.
class MessageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace imgpipe
