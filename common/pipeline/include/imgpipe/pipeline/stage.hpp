// A stage is a function from a batch to the next batch plus per-image errors (Ray's map_batches shape).
// Stages know nothing about queues, so the same objects run in local mode and behind RabbitMQ workers.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "imgpipe/messages/batch.hpp"

namespace imgpipe {

struct StageOutput {
  std::optional<Batch> next;        // absent when no image of the batch survived the stage
  std::vector<ImageResult> errors;  // one per image that failed here, with the reason
  std::string model_version;        // the model version the stage ran with; empty if it could not load one
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual const char* name() const = 0;
  virtual BatchKind input_kind() const = 0;
  virtual BatchKind output_kind() const = 0;
  // Throws MessageError if `in` is not of input_kind(); a failure of one image never throws.
  virtual StageOutput process(const Batch& in) = 0;
};

}  // namespace imgpipe
