#include "imgpipe/pipeline/stage_graph.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

namespace imgpipe {
namespace {

constexpr std::array<StageSpec, 3> stages{{
    {"preprocess", BatchKind::images, BatchKind::pixels, queues::images},
    {"feature", BatchKind::pixels, BatchKind::features, queues::pixels},
    {"classify", BatchKind::features, BatchKind::results, queues::features},
}};

// The graph is a chain: checked once, at compile time, so no caller has to.
constexpr bool is_chain() {
  if (stages.front().input != BatchKind::images || stages.back().output != BatchKind::results) return false;
  for (std::size_t i = 1; i < stages.size(); ++i) {
    if (stages[i - 1].output != stages[i].input) return false;
  }
  return true;
}
static_assert(is_chain(), "each stage must take what the stage before it gives, from images to results");

std::ptrdiff_t index_of(std::string_view name) {
  const auto found =
      std::find_if(stages.begin(), stages.end(), [&](const StageSpec& stage) { return name == stage.name; });
  return found == stages.end() ? -1 : found - stages.begin();
}

std::string stage_names() {
  std::string names;
  for (const auto& stage : stages) names += (names.empty() ? "" : ", ") + std::string(stage.name);
  return names;
}

}  // namespace

std::span<const StageSpec> stage_graph() {
  return stages;
}

const StageSpec* find_stage(std::string_view name) {
  const auto index = index_of(name);
  return index < 0 ? nullptr : &stages[static_cast<std::size_t>(index)];
}

const char* queue_for(BatchKind kind) {
  for (const auto& stage : stages) {
    if (stage.input == kind) return stage.queue;
  }
  return nullptr;
}

bool is_stage_queue(std::string_view queue) {
  return std::any_of(stages.begin(), stages.end(),
                     [&](const StageSpec& stage) { return queue == stage.queue; });
}

std::string describe_queue(std::string_view queue) {
  for (const auto& stage : stages) {
    if (queue == stage.queue) return std::string(queue) + " (" + stage.name + ")";
  }
  return std::string(queue);
}

std::vector<StageSpec> plan_stages(std::string_view first, std::string_view last) {
  const auto from = index_of(first);
  const auto to = index_of(last);
  for (const auto& [name, index] : {std::pair{first, from}, std::pair{last, to}}) {
    if (index < 0) {
      throw std::invalid_argument("unknown stage " + std::string(name) + " (the stages are " + stage_names() +
                                  ")");
    }
  }
  if (to < from) {
    throw std::invalid_argument("cannot run " + std::string(first) + " through " + std::string(last) + ": " +
                                std::string(last) + " comes first in the pipeline");
  }
  return {stages.begin() + from, stages.begin() + to + 1};
}

}  // namespace imgpipe
