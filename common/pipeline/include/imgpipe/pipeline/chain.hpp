// The one way stages are run one after another, by the workers and by local mode alike: a chain composed of
// stages whose kinds fit, run on one batch at a time (Ray Data's chain of map transforms).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "imgpipe/pipeline/stage.hpp"

namespace imgpipe {

class StageChain {
 public:
  // Throws std::invalid_argument, naming both stages, when a stage does not take what the one before it
  // gives, or when there is no stage at all.
  explicit StageChain(std::vector<std::shared_ptr<Stage>> stages);

  BatchKind input_kind() const;
  BatchKind output_kind() const;
  std::string name() const;  // "preprocess+feature"
  const std::vector<std::shared_ptr<Stage>>& stages() const { return stages_; }

  struct Outcome {
    // One per stage that failed images: its errors, under the stage's name and the model version it used.
    std::vector<ResultBatch> failures;
    // What came out of the last stage (of output_kind()); absent when no image got that far.
    std::optional<Batch> out;
    std::size_t failed() const;
  };
  // Every image of `batch` ends up either in `out` or in exactly one failure. Throws MessageError when
  // `batch` is not of input_kind().
  Outcome run(Batch batch) const;

 private:
  std::vector<std::shared_ptr<Stage>> stages_;
};

}  // namespace imgpipe
