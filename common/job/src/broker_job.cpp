#include "imgpipe/job/broker_job.hpp"

#include <optional>

#include "imgpipe/job/dead_letters.hpp"
#include "imgpipe/job/in_flight_window.hpp"
#include "imgpipe/job/progress.hpp"
#include "imgpipe/messages/codec.hpp"
#include "imgpipe/messages/protocol.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/transport/amqp/job_channel.hpp"

namespace imgpipe {
namespace {

constexpr std::size_t max_messages_per_sync = 64;  // result messages journaled with one fdatasync

// Turns one message from the job's result queue into results; the new ones (not already answered) are
// added to `results` and to `fresh`.
void take_message(const IncomingMessage& message, const std::string& job_id, const std::string& queue,
                  int delivery_limit, JobResults& results, std::vector<JournaledResult>& fresh,
                  std::size_t& nameless_dead_letters, const LogFn& log) {
  auto add = [&](const ImageResult& result, const std::string& version) {
    if (results.add(result, version)) fresh.emplace_back(result, version);
  };
  if (is_dead_letter(message)) {
    const DeadLetter letter = read_dead_letter(message, job_id, delivery_limit);
    if (letter.image_ids.empty()) {
      ++nameless_dead_letters;
      log("warn", "job " + job_id + ": a message was " + letter.reason +
                      "; its images cannot be read from it, so they stay unanswered");
      return;
    }
    log("warn", "job " + job_id + ": a message of " + std::to_string(letter.image_ids.size()) +
                    " images was " + letter.reason);
    for (const auto& id : letter.image_ids) add(ImageResult{id, "", 0.0, letter.reason}, "");
    return;
  }
  try {
    const Batch batch = decode(message.body);
    const auto* result_batch = std::get_if<ResultBatch>(&batch);
    if (result_batch == nullptr || result_batch->job.job_id != job_id) {
      log("warn", "ignoring a message on " + queue + " that is not a result of job " + job_id);
      return;
    }
    for (const auto& result : result_batch->results) add(result, result_batch->job.model_version);
  } catch (const MessageError& error) {
    log("warn", std::string("ignoring an undecodable result message: ") + error.what());
  }
}

}  // namespace

std::string run_broker_job(const BrokerList& address, const std::vector<JobInput>& inputs,
                           const BrokerJobSettings& settings, JobResults& results, const LogFn& log) {
  const std::string job_id = settings.job_id.empty() ? new_job_id() : settings.job_id;
  JobChannel channel(address, settings.connection, job_id, log);
  const JobRef job{job_id, channel.result_queue(), settings.job.model, "", settings.job.top_k};
  Progress progress("job " + job_id, results.total(), settings.job.show_progress);
  progress.update(results.done(), results.failed());
  InFlightWindow window(settings.window, settings.job.batch_size);

  // Publishing and collecting take turns: a batch goes out only while the job's images in flight (published,
  // not answered) fit the window, so the job never becomes a backlog the broker cannot hold. Every few
  // batches, wait for the broker's confirms and journal those images as published: a resumed job publishes
  // again exactly the images not journaled.
  std::vector<std::string> unjournaled;
  std::size_t batches_in_group = 0;
  auto journal_published = [&] {
    if (unjournaled.empty()) return;
    // A broker under a memory or disk alarm confirms nothing until it clears, however long that takes: wait
    // it out. 120 s without confirms from a broker that is not blocked is a failure.
    channel.wait_confirms(std::chrono::seconds(120), JobChannel::AlarmWait::wait_out);
    if (settings.journal != nullptr) settings.journal->published(unjournaled);
    unjournaled.clear();
    batches_in_group = 0;
  };
  BatchReader reader(inputs, job, settings.job, [&](const ImageResult& result, const std::string& version) {
    if (results.add(result, version) && settings.journal != nullptr)
      settings.journal->results({{result, version}});
  });
  std::optional<ImageBatch> waiting;  // read, not yet admitted by the window
  bool inputs_left = true;
  std::size_t published = 0;
  auto publish_what_fits = [&] {
    while (inputs_left) {
      if (channel.cancelled()) {  // `imgpipe cancel`: a cancelled job reads no more inputs
        inputs_left = false;
        return;
      }
      if (!waiting) waiting = reader.next();
      if (!waiting) {
        inputs_left = false;
        journal_published();
        return;
      }
      std::size_t bytes = 0;
      for (const auto& image : waiting->images) bytes += image.bytes.size();
      if (!window.admits(waiting->images.size(), bytes)) {
        // Journaled before waiting for answers: a resumed job then publishes none of these again.
        journal_published();
        return;
      }
      for (const auto& image : waiting->images) {
        unjournaled.push_back(image.image_id);
        window.published(image.image_id, image.bytes.size());
      }
      Headers tags{{headers::job, job_id}};
      stamp_published(tags);  // the first stage measures queue wait from here
      channel.publish({queue_for(BatchKind::images), encode(*waiting), std::move(tags)});
      published += waiting->images.size();
      waiting.reset();
      if (settings.after_publish) settings.after_publish();
      if (++batches_in_group >= std::max<std::size_t>(settings.journal_group, 1)) journal_published();
    }
  };

  std::size_t nameless_dead_letters = 0;
  auto last_progress = std::chrono::steady_clock::now();
  while (true) {
    // The result queue is left in place: what the workers still send is kept there (x-expires) for later.
    if (settings.job.stop != nullptr && *settings.job.stop) {
      progress.finish(results.done(), results.failed());
      throw JobInterrupted("interrupted while running job " + job_id + " (its results so far stay in " +
                           channel.result_queue() + "; `imgpipe submit --resume " + job_id +
                           "` finishes it)");
    }
    publish_what_fits();
    if (results.complete()) break;
    // Once cancelled, the results computed before the cancel are taken until none came for a moment: the
    // workers publish nothing more for this job.
    auto message = channel.next_result(std::chrono::milliseconds(channel.cancelled() ? 300 : 500));
    if (!message && channel.cancelled()) break;
    if (!message) {
      if (std::chrono::steady_clock::now() - last_progress > settings.idle_timeout) {
        std::string dead = nameless_dead_letters == 0
                               ? ""
                               : "; " + std::to_string(nameless_dead_letters) +
                                     " unreadable messages of this job were dead-lettered (see imgpipe.dead)";
        throw BrokerError("job " + job_id + " stalled: no result for " +
                          std::to_string(settings.idle_timeout.count()) + " s with " +
                          std::to_string(results.total() - results.done()) +
                          " images outstanding (are the workers running?)" + dead);
      }
      continue;
    }
    // Take what has already arrived too, so one fdatasync covers many result messages.
    std::vector<IncomingMessage> taken;
    taken.push_back(std::move(*message));
    while (taken.size() < max_messages_per_sync) {
      auto more = channel.next_result(std::chrono::milliseconds(0));
      if (!more) break;
      taken.push_back(std::move(*more));
    }
    std::vector<JournaledResult> fresh;
    for (const auto& delivery : taken) {
      take_message(delivery, job_id, channel.result_queue(), settings.connection.delivery_limit, results,
                   fresh, nameless_dead_letters, log);
    }
    // On disk before the broker forgets them: a publisher killed between the two finds them in the
    // journal, or gets them again from the queue (a duplicate, ignored).
    if (settings.journal != nullptr) settings.journal->results(fresh);
    for (const auto& delivery : taken) channel.ack(delivery.delivery_tag);
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [result, version] : fresh) window.answered(result.image_id, now);
    progress.update(results.done(), results.failed());
    if (settings.on_progress) settings.on_progress(results);
    last_progress = now;
  }
  if (channel.cancelled()) {
    const std::size_t rest = results.answer_rest("cancelled");
    log("warn", "job " + job_id + " was cancelled after publishing " + std::to_string(published) + " of " +
                    std::to_string(inputs.size()) + " images: " + std::to_string(rest) +
                    " images without a result get the error \"cancelled\"");
    if (settings.on_cancelled) settings.on_cancelled();
  }
  progress.finish(results.done(), results.failed());
  channel.delete_result_queue();
  return job_id;
}

}  // namespace imgpipe
