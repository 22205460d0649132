// Puts stages behind a queue: decode the delivery, run the stage chain, route what comes out.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "imgpipe/broker.hpp"
#include "imgpipe/codec.hpp"
#include "imgpipe/logging.hpp"
#include "imgpipe/metrics.hpp"
#include "imgpipe/stage.hpp"

namespace imgpipe {

// Header names on every message (strings), so a dead letter can still be traced to its job.
namespace headers {
inline constexpr const char* job = "x-imgpipe-job";
inline constexpr const char* error = "x-imgpipe-error";
inline constexpr const char* source_queue = "x-imgpipe-source-queue";
inline constexpr const char* stage = "x-imgpipe-stage";
// When the message was published, in milliseconds since the Unix epoch: the next stage measures queue wait.
inline constexpr const char* published_ms = "x-imgpipe-published-ms";
}  // namespace headers

// Sets headers::published_ms to `now`.
void stamp_published(Headers& tags,
                     std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
// The time in headers::published_ms, or nullopt when it is missing or not a plain decimal number.
std::optional<std::chrono::system_clock::time_point> published_at(const Headers& tags);

// The queue a batch of this kind is consumed from.
const char* queue_for(BatchKind kind);

// Runs `chain` (one stage, or preprocess+feature fused) on each delivery and returns what to publish:
// the next batch to its queue, per-image errors to the job's result queue, and for an undecodable
// message a dead letter carrying the reason. Every output is stamped with headers::published_ms.
// `log` must outlive the handler; `metrics`, when given, records each delivery (see metrics.hpp).
// `limits` bound what is decoded (message size first); a message over them is dead-lettered.
DeliveryHandler make_stage_handler(std::vector<std::shared_ptr<Stage>> chain, std::string source_queue,
                                   const Logger& log, std::shared_ptr<WorkerMetrics> metrics = nullptr,
                                   CodecLimits limits = {});

}  // namespace imgpipe
