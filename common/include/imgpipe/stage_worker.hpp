// Puts stages behind a queue: decode the delivery, run the stage chain, route what comes out.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "imgpipe/broker.hpp"
#include "imgpipe/stage.hpp"

namespace imgpipe {

// Header names on every message (strings), so a dead letter can still be traced to its job.
namespace headers {
inline constexpr const char* job = "x-imgpipe-job";
inline constexpr const char* error = "x-imgpipe-error";
inline constexpr const char* source_queue = "x-imgpipe-source-queue";
inline constexpr const char* stage = "x-imgpipe-stage";
}  // namespace headers

// The queue a batch of this kind is consumed from.
const char* queue_for(BatchKind kind);

// Runs `chain` (one stage, or preprocess+feature fused) on each delivery and returns what to publish:
// the next batch to its queue, per-image errors to the job's result queue, and for an undecodable
// message a dead letter carrying the reason.
DeliveryHandler make_stage_handler(std::vector<std::shared_ptr<Stage>> chain, std::string source_queue,
                                   LogFn log);

}  // namespace imgpipe
