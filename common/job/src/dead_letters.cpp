#include "imgpipe/job/dead_letters.hpp"

#include "imgpipe/messages/codec.hpp"
#include "imgpipe/messages/protocol.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"

namespace imgpipe {
namespace {

// Headers RabbitMQ adds when it dead-letters a message (string-valued, unlike x-death).
constexpr const char* first_death_reason = "x-first-death-reason";
constexpr const char* first_death_queue = "x-first-death-queue";

std::string header_or(const Headers& tags, const char* name, const std::string& fallback) {
  const auto found = tags.find(name);
  return found == tags.end() || found->second.empty() ? fallback : found->second;
}

std::vector<std::string> ids_of(const Batch& batch) {
  std::vector<std::string> ids;
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, ImageBatch> || std::is_same_v<T, PixelBatch>) {
          for (const auto& item : b.images) ids.push_back(item.image_id);
        } else if constexpr (std::is_same_v<T, FeatureBatch>) {
          for (const auto& item : b.features) ids.push_back(item.image_id);
        } else {
          for (const auto& item : b.results) ids.push_back(item.image_id);
        }
      },
      batch);
  return ids;
}

}  // namespace

bool is_dead_letter(const IncomingMessage& message) {
  return message.headers.count(headers::error) > 0 || message.headers.count(first_death_reason) > 0;
}

DeadLetter read_dead_letter(const IncomingMessage& message, const std::string& job_id, int delivery_limit) {
  DeadLetter letter;
  const Headers& tags = message.headers;
  if (const auto worker_reason = tags.find(headers::error); worker_reason != tags.end()) {
    letter.source_queue = header_or(tags, headers::source_queue, header_or(tags, first_death_queue, "?"));
    letter.reason =
        "dead-lettered from " + describe_queue(letter.source_queue) + ": " + worker_reason->second;
  } else {
    letter.source_queue = header_or(tags, first_death_queue, "?");
    const std::string why = header_or(tags, first_death_reason, "?");
    if (why == "delivery_limit") {
      letter.reason = "dead-lettered from " + describe_queue(letter.source_queue) + " after " +
                      std::to_string(delivery_limit + 1) +
                      " deliveries: the stage failed on every attempt (see the worker logs)";
    } else {
      letter.reason = "dead-lettered from " + describe_queue(letter.source_queue) + " (" + why + ")";
    }
  }
  // A worker dead-letters what it cannot decode, so the body may be anything: take its ids only when it
  // decodes, or when its intact header at least names this job.
  try {
    const Batch batch = decode(message.body);
    if (job_of(batch).job_id == job_id) letter.image_ids = ids_of(batch);
  } catch (const MessageError&) {
    SalvagedIds salvaged = salvage_ids(message.body);
    if (salvaged.job_id == job_id) letter.image_ids = std::move(salvaged.image_ids);
  }
  return letter;
}

}  // namespace imgpipe
