#include "imgpipe/worker/stage_handler.hpp"

#include <algorithm>

#include "imgpipe/messages/protocol.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/transport/amqp/queue_worker.hpp"
#include "imgpipe/worker/image_failure.hpp"

namespace imgpipe {
namespace {

OutgoingMessage dead_letter(const IncomingMessage& message, const std::string& source_queue,
                            const std::string& reason) {
  Headers tags = message.headers;
  tags[headers::error] = reason;
  tags[headers::source_queue] = source_queue;
  // Through imgpipe.dlx under the source queue's name, like the broker's own dead letters: imgpipe.dead
  // keeps it for the operator, and imgpipe.dead.jobs passes a copy to the job named by x-imgpipe-job.
  return {source_queue, message.body, std::move(tags), queues::dead_letter_exchange};
}

OutgoingMessage results_message(const ResultBatch& batch) {
  return {
      batch.job.reply_to, encode(batch), {{headers::job, batch.job.job_id}, {headers::stage, batch.stage}}};
}

// The chain's outcome as messages: each stage's failures to the job, and what came out of the last stage
// to the queue of its kind (or, for results, to the job too).
std::vector<OutgoingMessage> route(StageChain::Outcome outcome, const JobRef& job, const Logger& log,
                                   WorkerMetrics* metrics) {
  std::vector<OutgoingMessage> out;
  for (const auto& failure : outcome.failures) {
    for (const auto& error : failure.results) {
      if (metrics != nullptr) metrics->image_failed(classify_failure(failure.stage, error.error));
      log.event("info", "failed in " + failure.stage + ": " + error.error,
                {{"job", job.job_id}, {"image", error.image_id}});
    }
    out.push_back(results_message(failure));
  }
  if (outcome.out) {
    if (const auto* results = std::get_if<ResultBatch>(&*outcome.out)) {
      out.push_back(results_message(*results));
    } else {
      out.push_back({queue_for(kind_of(*outcome.out)), encode(*outcome.out), {{headers::job, job.job_id}}});
    }
  }
  return out;
}

std::vector<OutgoingMessage> stamped(std::vector<OutgoingMessage> out) {
  const auto now = std::chrono::system_clock::now();
  for (auto& message : out) stamp_published(message.headers, now);
  return out;
}

}  // namespace

DeliveryHandler make_stage_handler(StageChain chain, std::string source_queue, const Logger& log,
                                   std::shared_ptr<WorkerMetrics> metrics, CodecLimits limits) {
  return [chain = std::move(chain), source_queue = std::move(source_queue), &log,
          metrics = std::move(metrics),
          limits](const IncomingMessage& message) -> std::vector<OutgoingMessage> {
    const auto started = std::chrono::steady_clock::now();
    if (metrics) {
      // Clocks of different hosts disagree a little; a message cannot have waited less than nothing.
      if (const auto published = published_at(message.headers)) {
        metrics->queue_wait(
            std::max(std::chrono::duration<double>(std::chrono::system_clock::now() - *published),
                     std::chrono::duration<double>::zero()));
      }
    }
    Batch batch;
    try {
      batch = decode(message.body, limits);
      if (kind_of(batch) != chain.input_kind()) {
        throw MessageError(std::string("queue ") + source_queue + " takes " + to_string(chain.input_kind()) +
                           " batches, this one holds " + to_string(kind_of(batch)));
      }
    } catch (const MessageError& error) {
      log.warn("dead-lettering a message from " + source_queue + ": " + error.what());
      if (metrics) metrics->dead_lettered();
      return stamped({dead_letter(message, source_queue, error.what())});
    }
    const JobRef job = job_of(batch);
    if (job.reply_to.empty()) {
      log.event("warn", "dead-lettering a batch: it names no result queue", {{"job", job.job_id}});
      if (metrics) metrics->dead_lettered();
      return stamped(
          {dead_letter(message, source_queue, "batch names no result queue (job.reply_to is empty)")});
    }

    StageChain::Outcome outcome = chain.run(std::move(batch));
    const std::size_t survivors = outcome.out ? item_count(*outcome.out) : 0;
    auto out = route(std::move(outcome), job, log, metrics.get());
    if (metrics) {
      metrics->images_processed(survivors);
      metrics->batch_handled(std::chrono::steady_clock::now() - started);
    }
    return stamped(std::move(out));
  };
}

}  // namespace imgpipe
