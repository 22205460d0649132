#include "imgpipe/stage_worker.hpp"

#include <algorithm>
#include <charconv>

#include "imgpipe/codec.hpp"

namespace imgpipe {

const char* queue_for(BatchKind kind) {
  switch (kind) {
    case BatchKind::images:
      return queues::images;
    case BatchKind::pixels:
      return queues::pixels;
    case BatchKind::features:
      return queues::features;
    case BatchKind::results:
      return nullptr;  // results go to each job's own queue
  }
  return nullptr;
}

void stamp_published(Headers& tags, std::chrono::system_clock::time_point now) {
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  tags[headers::published_ms] = std::to_string(millis);
}

std::optional<std::chrono::system_clock::time_point> published_at(const Headers& tags) {
  const auto found = tags.find(headers::published_ms);
  if (found == tags.end()) return std::nullopt;
  const std::string& text = found->second;
  std::int64_t millis = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), millis);
  if (error != std::errc() || end != text.data() + text.size() || millis < 0) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(millis));
}

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

OutgoingMessage results_message(const JobRef& job, const std::string& stage,
                                std::vector<ImageResult> results) {
  ResultBatch batch{job, stage, std::move(results)};
  return {job.reply_to, encode(batch), {{headers::job, job.job_id}, {headers::stage, stage}}};
}

struct ChainRun {
  std::vector<OutgoingMessage> out;
  std::size_t survivors = 0;  // images that came out of the last stage
};

ChainRun run_chain(const std::vector<std::shared_ptr<Stage>>& chain, Batch batch, const JobRef& job,
                   const Logger& log, WorkerMetrics* metrics) {
  ChainRun run;
  for (const auto& stage : chain) {
    StageOutput output = stage->process(batch);
    if (!output.errors.empty()) {
      for (const auto& error : output.errors) {
        if (metrics != nullptr) metrics->image_failed(classify_failure(stage->name(), error.error));
        log.event("info", std::string("failed in ") + stage->name() + ": " + error.error,
                  {{"job", job.job_id}, {"image", error.image_id}});
      }
      JobRef answered = job;
      answered.model_version = output.model_version;
      run.out.push_back(results_message(answered, stage->name(), std::move(output.errors)));
    }
    if (!output.next) return run;
    batch = std::move(*output.next);
  }
  run.survivors = item_count(batch);
  if (const auto* results = std::get_if<ResultBatch>(&batch)) {
    run.out.push_back(
        {job.reply_to, encode(batch), {{headers::job, job.job_id}, {headers::stage, results->stage}}});
  } else {
    run.out.push_back({queue_for(kind_of(batch)), encode(batch), {{headers::job, job.job_id}}});
  }
  return run;
}

std::vector<OutgoingMessage> stamped(std::vector<OutgoingMessage> out) {
  const auto now = std::chrono::system_clock::now();
  for (auto& message : out) stamp_published(message.headers, now);
  return out;
}

}  // namespace

DeliveryHandler make_stage_handler(std::vector<std::shared_ptr<Stage>> chain, std::string source_queue,
                                   const Logger& log, std::shared_ptr<WorkerMetrics> metrics,
                                   CodecLimits limits) {
  return
      [chain = std::move(chain), source_queue = std::move(source_queue), &log, metrics = std::move(metrics),
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
          if (kind_of(batch) != chain.front()->input_kind()) {
            throw MessageError(std::string("queue ") + source_queue + " takes " +
                               to_string(chain.front()->input_kind()) + " batches, this one holds " +
                               to_string(kind_of(batch)));
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

        ChainRun run = run_chain(chain, std::move(batch), job, log, metrics.get());
        if (metrics) {
          metrics->images_processed(run.survivors);
          metrics->batch_handled(std::chrono::steady_clock::now() - started);
        }
        return stamped(std::move(run.out));
      };
}

}  // namespace imgpipe
