#include "imgpipe/pipeline/chain.hpp"

#include <stdexcept>

namespace imgpipe {

StageChain::StageChain(std::vector<std::shared_ptr<Stage>> stages) : stages_(std::move(stages)) {
  if (stages_.empty()) throw std::invalid_argument("a stage chain needs at least one stage");
  for (std::size_t i = 1; i < stages_.size(); ++i) {
    const Stage& before = *stages_[i - 1];
    const Stage& after = *stages_[i];
    if (before.output_kind() != after.input_kind()) {
      throw std::invalid_argument(std::string("cannot chain ") + before.name() + " (gives " +
                                  to_string(before.output_kind()) + " batches) to " + after.name() +
                                  " (takes " + to_string(after.input_kind()) + " batches)");
    }
  }
}

BatchKind StageChain::input_kind() const {
  return stages_.front()->input_kind();
}

BatchKind StageChain::output_kind() const {
  return stages_.back()->output_kind();
}

std::string StageChain::name() const {
  std::string name;
  for (const auto& stage : stages_) name += (name.empty() ? "" : "+") + std::string(stage->name());
  return name;
}

std::size_t StageChain::Outcome::failed() const {
  std::size_t count = 0;
  for (const auto& failure : failures) count += failure.results.size();
  return count;
}

StageChain::Outcome StageChain::run(Batch batch) const {
  if (kind_of(batch) != input_kind()) {
    throw MessageError(name() + " takes " + to_string(input_kind()) + " batches, this one holds " +
                       to_string(kind_of(batch)));
  }
  Outcome outcome;
  const JobRef job = job_of(batch);
  for (const auto& stage : stages_) {
    StageOutput output = stage->process(batch);
    if (!output.errors.empty()) {
      JobRef answered = job;
      answered.model_version = output.model_version;
      outcome.failures.push_back({answered, stage->name(), std::move(output.errors)});
    }
    if (!output.next) return outcome;
    batch = std::move(*output.next);
  }
  outcome.out = std::move(batch);
  return outcome;
}

}  // namespace imgpipe
