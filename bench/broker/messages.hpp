// The bodies the broker benchmark publishes: batches of the pipeline's own types, encoded by its wire codec,
// so each message is as big as the one a stage really sends (JSON header, ids, tensors) and not a guess.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "imgpipe/messages/batch.hpp"

namespace imgpipe::bench {

struct MessageSpec {
  BatchKind kind = BatchKind::pixels;
  std::size_t batch = 8;  // images per message
  // images: the files (arguments as `imgpipe submit` takes them), packed as the publisher packs them
  std::vector<std::string> inputs;
  std::size_t max_batch_bytes = 8u << 20;  // JobSettings' default: a message is closed once it reaches this
  // pixels: the model's input geometry; features: its feature dimension
  int width = 224;
  int height = 224;
  int channels = 3;
  int dim = 1280;
  std::string model = "photos";
};

struct Messages {
  std::vector<std::vector<std::uint8_t>> bodies;  // published in turn
  double mean_bytes = 0.0;
  double mean_images = 0.0;  // images per message: below `batch` when max_batch_bytes closed them early
};

// At most `max_bodies` messages. For images, the batches `imgpipe submit` would publish for the inputs
// (the first max_bodies of them); throws std::runtime_error when no input could be read.
Messages make_messages(const MessageSpec& spec, std::size_t max_bodies);

}  // namespace imgpipe::bench
