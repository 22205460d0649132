// The pipeline, defined once: its stages in order, the batch kind each takes and gives, the queue its input
// waits in, and the worker role that runs it. Workers, local mode, the broker topology, dead-letter reports,
// `imgpipe status` and the metrics all read it from here; adding a stage starts here.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "imgpipe/messages/batch.hpp"

namespace imgpipe {

// The stage queues, by the batches waiting in them (the graph below says which stage takes each).
namespace queues {
inline constexpr const char* images = "imgpipe.images";
inline constexpr const char* pixels = "imgpipe.pixels";
inline constexpr const char* features = "imgpipe.features";
}  // namespace queues

struct StageSpec {
  const char* name;  // also the worker role that runs it, and its name in logs and metrics
  BatchKind input;
  BatchKind output;
  const char* queue;  // the durable queue its input batches wait in
};

// In pipeline order: the first stage takes images, the last gives results, and each stage takes what the one
// before it gives.
std::span<const StageSpec> stage_graph();

// nullptr when the graph has no stage of that name.
const StageSpec* find_stage(std::string_view name);

// The queue a batch of this kind waits in; nullptr for results, which go to each job's own queue.
const char* queue_for(BatchKind kind);

bool is_stage_queue(std::string_view queue);

// "imgpipe.images (preprocess)" for a stage queue, the name alone for any other.
std::string describe_queue(std::string_view queue);

// The consecutive stages from `first` to `last`, as one worker runs them: a stage alone (first == last), or
// stages fused into one process (preprocess..feature). Fusion is this planning rule, not a branch in the
// stages. Throws std::invalid_argument for an unknown stage or when `last` comes before `first`.
std::vector<StageSpec> plan_stages(std::string_view first, std::string_view last);

}  // namespace imgpipe
