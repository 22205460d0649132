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

// The batch a stage was handed, as the type it takes (one of Batch's alternatives); throws MessageError
// naming the stage when `in` holds another kind.
template <typename Taken>
const Taken& batch_taken_by(const Stage& stage, const Batch& in) {
  if (const auto* batch = std::get_if<Taken>(&in)) return *batch;
  throw MessageError(std::string(stage.name()) + " takes " + to_string(stage.input_kind()) +
                     " batches, got " + to_string(kind_of(in)));
}

}  // namespace imgpipe
