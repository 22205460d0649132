// How every stage gets its model for a batch: from its ModelCache, at the version the batch was stamped with.
#pragma once

#include <optional>
#include <string>

#include "imgpipe/models/model_cache.hpp"
#include "imgpipe/pipeline/stage.hpp"

namespace imgpipe {

// The model a batch asks for: the version the batch was stamped with by the stage before (loaded, or loaded
// now from the store, even if model.json names a newer one since), or the current one for a batch no stage
// stamped yet. When that version is neither loaded nor in the store, every item of the batch gets the reason
// in `output` and nullopt comes back, so a stage never mixes versions and never throws for a model problem.
// Items are anything with an image_id.
template <typename Loaded, typename Items>
std::optional<typename ModelCache<Loaded>::Entry> model_for_batch(ModelCache<Loaded>& cache,
                                                                  const JobRef& job, const Items& items,
                                                                  StageOutput& output) {
  auto fail_all = [&](const std::string& reason) {
    for (const auto& item : items) output.errors.push_back({item.image_id, "", 0.0, reason});
    return std::nullopt;
  };
  typename ModelCache<Loaded>::Entry model;
  try {
    model = job.model_version.empty() ? cache.get(job.model) : cache.get(job.model, job.model_version);
  } catch (const ModelError& error) {
    return fail_all(error.what());
  }
  output.model_version = model.config->version;
  return model;
}

}  // namespace imgpipe
