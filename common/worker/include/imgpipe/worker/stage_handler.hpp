// Puts a stage chain behind a queue: decode the delivery, run the chain, route what comes out.
#pragma once

#include <memory>
#include <string>

#include "imgpipe/messages/codec.hpp"
#include "imgpipe/ops/logging.hpp"
#include "imgpipe/ops/metrics.hpp"
#include "imgpipe/pipeline/chain.hpp"
#include "imgpipe/transport/amqp/queue_worker.hpp"

namespace imgpipe {

// Runs `chain` (one stage, or preprocess+feature fused) on each delivery and returns what to publish:
// the next batch to its queue, per-image errors to the job's result queue, and for an undecodable
// message a dead letter carrying the reason. Every output is stamped with headers::published_ms.
// `log` must outlive the handler; `metrics`, when given, records each delivery (see metrics.hpp).
// `limits` bound what is decoded (message size first); a message over them is dead-lettered.
DeliveryHandler make_stage_handler(StageChain chain, std::string source_queue, const Logger& log,
                                   std::shared_ptr<WorkerMetrics> metrics = nullptr, CodecLimits limits = {});

}  // namespace imgpipe
