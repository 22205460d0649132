#include "imgpipe/ops/bottleneck.hpp"

#include <algorithm>
#include <cstdio>

namespace imgpipe {
namespace {

std::string fixed(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

bool backlogged(const StageFlow& flow, double min_backlog_seconds) {
  // Each worker takes the next message as soon as it is free: up to one ready message per consumer is
  // about to be taken, not waiting.
  if (flow.ready < 2 || flow.ready <= flow.consumers) return false;
  return flow.out_rate <= 0 || static_cast<double>(flow.ready) / flow.out_rate >= min_backlog_seconds;
}

}  // namespace

const char* to_string(Bottleneck::Kind kind) {
  switch (kind) {
    case Bottleneck::Kind::idle:
      return "idle";
    case Bottleneck::Kind::publisher:
      return "publisher";
    case Bottleneck::Kind::stage:
      return "stage";
    case Bottleneck::Kind::no_workers:
      return "no_workers";
  }
  return "idle";
}

Bottleneck find_bottleneck(const std::vector<StageFlow>& stages, double min_backlog_seconds) {
  for (const auto& flow : stages) {
    // Unacked deliveries mean someone consumes, whatever the consumer count says: the management API samples
    // the two at different moments, and under load a live worker's queue can read 0 consumers, 3 unacked.
    if (flow.exists && flow.consumers == 0 && flow.unacked == 0 && flow.ready > 0) {
      return {Bottleneck::Kind::no_workers, flow.stage,
              "stalled: " + std::to_string(flow.ready) + " batches wait for " + flow.stage +
                  ", which has no workers: start imgpipe-" + flow.stage};
    }
  }
  const auto last = std::find_if(stages.rbegin(), stages.rend(), [&](const StageFlow& flow) {
    return flow.exists && backlogged(flow, min_backlog_seconds);
  });
  if (last != stages.rend()) {
    const StageFlow& flow = *last;
    std::string detail = std::to_string(flow.ready) + " batches waiting";
    if (flow.out_rate > 0) {
      detail += ", " + fixed(static_cast<double>(flow.ready) / flow.out_rate) + " s of work at " +
                fixed(flow.out_rate) + " batches/s";
    }
    std::string starved;
    for (auto after = last.base(); after != stages.end(); ++after)
      starved += (starved.empty() ? "" : ", ") + after->stage;
    if (!starved.empty()) detail += "; " + starved + " starved";
    return {Bottleneck::Kind::stage, flow.stage,
            flow.stage + "-bound: add " + flow.stage + " replicas (" + detail + ")"};
  }
  const bool moving = std::any_of(stages.begin(), stages.end(), [](const StageFlow& flow) {
    return flow.exists && (flow.unacked > 0 || flow.ready > 0 || flow.out_rate > 0 || flow.in_rate > 0);
  });
  if (moving) {
    return {Bottleneck::Kind::publisher, "",
            "no backlog: publisher-bound (the workers keep up with what imgpipe submit sends)"};
  }
  return {Bottleneck::Kind::idle, "", "idle: nothing queued or in flight"};
}

}  // namespace imgpipe
