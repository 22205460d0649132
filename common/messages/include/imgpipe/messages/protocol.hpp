// The names imgpipe's messages travel under, besides the batches themselves: AMQP header names, the
// dead-letter exchanges and queues, and each job's result queue. The stage queues belong to the stage graph
// (pipeline/stage_graph.hpp). Shared by the workers, which write these, and the publisher, which reads them.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace imgpipe {

// String-valued AMQP headers of a message.
using Headers = std::map<std::string, std::string>;

namespace queues {
inline constexpr const char* dead = "imgpipe.dead";
inline constexpr const char* dead_letter_exchange = "imgpipe.dlx";
// Headers exchange: each result queue binds here on its job id (x-match all-with-x, RabbitMQ 3.10+).
inline constexpr const char* dead_letters_by_job = "imgpipe.dead.jobs";
// Stream of cancel records (messages/cancellation.hpp): every worker and publisher reads it, from its start
// on every connect, so a cancel reaches replicas that start after it too.
inline constexpr const char* cancelled = "imgpipe.cancelled";
std::string results_for(std::string_view job_id);
}  // namespace queues

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

}  // namespace imgpipe
