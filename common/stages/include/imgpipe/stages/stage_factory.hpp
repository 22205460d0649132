// Builds the stage objects for the stages of the graph (pipeline/stage_graph.hpp), so a worker or local mode
// names a run of stages and gets a checked chain, without knowing which class implements which stage.
#pragma once

#include <memory>
#include <string_view>

#include "imgpipe/models/backbone.hpp"
#include "imgpipe/models/model_cache.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/pipeline/chain.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/stages/preprocess.hpp"

namespace imgpipe {

// What the stages need to be built: the store, the compute settings of feature, the decode limits of
// preprocess, who hears about model loads, and the object store preprocess fetches referenced images from.
struct StageSettings {
  ModelStore store;
  ComputeOptions compute{};
  DecodeLimits limits{};
  ModelLoadObserver on_load{};
  std::shared_ptr<const S3Client> objects{};
  std::size_t loaded_versions = kDefaultLoadedVersions;  // of each model, per stage (ModelCache)
};

// The stage object for one stage of the graph. Throws std::logic_error if the object does not have the name
// and kinds the graph gives that stage (a stage class out of step with the graph).
std::shared_ptr<Stage> make_stage(const StageSpec& spec, const StageSettings& settings);

// The stages from `first` to `last` of the graph, as one chain (plan_stages says which are allowed).
StageChain make_chain(std::string_view first, std::string_view last, const StageSettings& settings);

// The whole pipeline, images to results: local mode.
StageChain make_full_chain(const StageSettings& settings);

}  // namespace imgpipe
