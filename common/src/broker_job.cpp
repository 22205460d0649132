#include "imgpipe/broker_job.hpp"

#include "imgpipe/codec.hpp"
#include "imgpipe/stage_worker.hpp"

namespace imgpipe {

std::string run_broker_job(const BrokerAddress& address, const std::vector<JobInput>& inputs,
                           const BrokerJobSettings& settings, JobResults& results, const LogFn& log) {
  const std::string job_id = settings.job_id.empty() ? new_job_id() : settings.job_id;
  JobChannel channel(address, settings.connection, job_id, log);
  const JobRef job{job_id, channel.result_queue(), settings.job.model, ""};
  Progress progress("job " + job_id, inputs.size(), settings.job.show_progress);

  auto take_result = [&](const IncomingMessage& message) {
    try {
      const Batch batch = decode(message.body);
      const auto* result_batch = std::get_if<ResultBatch>(&batch);
      if (result_batch == nullptr || result_batch->job.job_id != job_id) {
        log("warn",
            "ignoring a message on " + channel.result_queue() + " that is not a result of job " + job_id);
      } else {
        for (const auto& result : result_batch->results) results.add(result, result_batch->job.model_version);
      }
    } catch (const MessageError& error) {
      log("warn", std::string("ignoring an undecodable result message: ") + error.what());
    }
    channel.ack(message.delivery_tag);
    progress.update(results.done(), results.failed());
    if (settings.on_progress) settings.on_progress(results);
  };

  // Publish everything first (the confirm window bounds memory); results that arrive meanwhile wait in
  // the durable result queue.
  for_each_batch(
      inputs, job, settings.job,
      [&](ImageBatch&& batch) {
        Headers tags{{headers::job, job_id}};
        stamp_published(tags);  // the first stage measures queue wait from here
        channel.publish({queues::images, encode(batch), std::move(tags)});
      },
      [&](const ImageResult& result, const std::string& version) { results.add(result, version); });
  // A broker under a memory or disk alarm confirms nothing until it clears, however long that takes: wait it
  // out. 120 s without confirms from a broker that is not blocked is a failure.
  channel.wait_confirms(std::chrono::seconds(120), JobChannel::AlarmWait::wait_out);

  auto last_progress = std::chrono::steady_clock::now();
  while (!results.complete()) {
    // The result queue is left in place: what the workers still send is kept there (x-expires) for later.
    if (settings.job.stop != nullptr && *settings.job.stop) {
      progress.finish(results.done(), results.failed());
      throw JobInterrupted("interrupted while waiting for results of job " + job_id + " (they stay in " +
                           channel.result_queue() + ")");
    }
    auto message = channel.next_result(std::chrono::milliseconds(500));
    if (message) {
      take_result(*message);
      last_progress = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_progress > settings.idle_timeout) {
      throw BrokerError("job " + job_id + " stalled: no result for " +
                        std::to_string(settings.idle_timeout.count()) + " s with " +
                        std::to_string(results.total() - results.done()) +
                        " images outstanding (are the workers running?)");
    }
  }
  progress.finish(results.done(), results.failed());
  channel.delete_result_queue();
  return job_id;
}

}  // namespace imgpipe
