#include "imgpipe/stages/stage_factory.hpp"

#include <stdexcept>
#include <string>

#include "imgpipe/stages/classify.hpp"
#include "imgpipe/stages/feature.hpp"

namespace imgpipe {
namespace {

std::shared_ptr<Stage> construct(std::string_view name, const StageSettings& settings) {
  if (name == "preprocess")
    return std::make_shared<PreprocessStage>(settings.store, settings.limits, settings.on_load,
                                             settings.objects, settings.loaded_versions);
  if (name == "feature") {
    return std::make_shared<FeatureStage>(settings.store, settings.compute, settings.on_load,
                                          settings.loaded_versions);
  }
  if (name == "classify")
    return std::make_shared<ClassifyStage>(settings.store, settings.on_load, settings.loaded_versions);
  throw std::logic_error("no stage class implements stage " + std::string(name) + " of the stage graph");
}

}  // namespace

std::shared_ptr<Stage> make_stage(const StageSpec& spec, const StageSettings& settings) {
  auto stage = construct(spec.name, settings);
  if (std::string_view(stage->name()) != spec.name || stage->input_kind() != spec.input ||
      stage->output_kind() != spec.output) {
    throw std::logic_error(std::string("the class of stage ") + spec.name + " is " + stage->name() + ", " +
                           to_string(stage->input_kind()) + " -> " + to_string(stage->output_kind()) +
                           "; the stage graph says " + to_string(spec.input) + " -> " +
                           to_string(spec.output));
  }
  return stage;
}

StageChain make_chain(std::string_view first, std::string_view last, const StageSettings& settings) {
  std::vector<std::shared_ptr<Stage>> stages;
  for (const StageSpec& spec : plan_stages(first, last)) stages.push_back(make_stage(spec, settings));
  return StageChain(std::move(stages));
}

StageChain make_full_chain(const StageSettings& settings) {
  const auto graph = stage_graph();
  return make_chain(graph.front().name, graph.back().name, settings);
}

}  // namespace imgpipe
