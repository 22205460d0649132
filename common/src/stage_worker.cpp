#include "imgpipe/stage_worker.hpp"

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

namespace {

OutgoingMessage dead_letter(const IncomingMessage& message, const std::string& source_queue,
                            const std::string& reason) {
  Headers tags = message.headers;
  tags[headers::error] = reason;
  tags[headers::source_queue] = source_queue;
  return {queues::dead, message.body, std::move(tags)};
}

OutgoingMessage results_message(const JobRef& job, const std::string& stage,
                                std::vector<ImageResult> results) {
  ResultBatch batch{job, stage, std::move(results)};
  return {job.reply_to, encode(batch), {{headers::job, job.job_id}, {headers::stage, stage}}};
}

}  // namespace

DeliveryHandler make_stage_handler(std::vector<std::shared_ptr<Stage>> chain, std::string source_queue,
                                   LogFn log) {
  return [chain = std::move(chain), source_queue = std::move(source_queue),
          log = std::move(log)](const IncomingMessage& message) -> std::vector<OutgoingMessage> {
    Batch batch;
    try {
      batch = decode(message.body);
      if (kind_of(batch) != chain.front()->input_kind()) {
        throw MessageError(std::string("queue ") + source_queue + " takes " +
                           to_string(chain.front()->input_kind()) + " batches, this one holds " +
                           to_string(kind_of(batch)));
      }
    } catch (const MessageError& error) {
      log("warn", "dead-lettering a message from " + source_queue + ": " + error.what());
      return {dead_letter(message, source_queue, error.what())};
    }
    const JobRef job = job_of(batch);
    if (job.reply_to.empty()) {
      log("warn", "dead-lettering job " + job.job_id + " batch: it names no result queue");
      return {dead_letter(message, source_queue, "batch names no result queue (job.reply_to is empty)")};
    }

    std::vector<OutgoingMessage> out;
    for (const auto& stage : chain) {
      StageOutput output = stage->process(batch);
      if (!output.errors.empty()) {
        for (const auto& error : output.errors) {
          log("info", "job " + job.job_id + " image " + error.image_id + " failed in " + stage->name() +
                          ": " + error.error);
        }
        JobRef answered = job;
        answered.model_version = output.model_version;
        out.push_back(results_message(answered, stage->name(), std::move(output.errors)));
      }
      if (!output.next) return out;
      batch = std::move(*output.next);
    }
    if (const auto* results = std::get_if<ResultBatch>(&batch)) {
      out.push_back(
          {job.reply_to, encode(batch), {{headers::job, job.job_id}, {headers::stage, results->stage}}});
    } else {
      out.push_back({queue_for(kind_of(batch)), encode(batch), {{headers::job, job.job_id}}});
    }
    return out;
  };
}

}  // namespace imgpipe
