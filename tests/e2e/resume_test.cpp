// Scenario 3: the publisher is killed (SIGKILL) mid-submit or mid-wait; `imgpipe submit --resume JOB`
// finishes the job with one line per image, publishing again only what the broker never confirmed.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "imgpipe/job/journal.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "publisher_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
using namespace std::chrono_literals;

namespace {

// Waits (up to a minute) until `condition` holds; false if it never did.
template <typename Condition>
bool wait_until(Condition condition) {
  for (int i = 0; i < 3000; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

std::string wait_for_job_id(const std::filesystem::path& log) {
  std::optional<std::string> id;
  REQUIRE(wait_until([&] { return (id = job_id_in(log)).has_value(); }));
  return *id;
}

// Lines of a worker log (text format: "TIME LEVEL ROLE: job ID image ID message") about `job_id` that say
// `what`. Other jobs' leftovers in the shared stage queues may show up in the same log.
std::size_t count_lines(const std::string& text, const std::string& job_id, const std::string& what) {
  std::size_t count = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("job " + job_id + " ") != std::string::npos && line.find(what) != std::string::npos)
      ++count;
  }
  return count;
}

// "ignored N duplicate results" from the publisher's log; 0 when it said nothing.
std::size_t duplicates_reported(const std::string& log) {
  std::smatch match;
  if (!std::regex_search(log, match, std::regex("ignored ([0-9]+) duplicate results"))) return 0;
  return std::stoul(match[1]);
}

}  // namespace

TEST_CASE("a publisher killed while waiting for results is resumed without publishing anything again",
          "[e2e][broker][resume]") {
  InputFolder inputs(2);
  TempDir state("imgpipe-state");
  const auto log_file = state.path() / "submit.log";
  // No classify worker yet: the broken files are answered by preprocess, the rest wait in imgpipe.features.
  auto preprocess = start_worker("preprocess", state.path() / "preprocess.log");
  auto feature = start_worker("feature", state.path() / "feature.log");
  ChildProcess submit(
      worker_binary("imgpipe"),
      // A window wide enough for the whole job: every image is published with nobody answering.
      submit_arguments({"--batch-size", "4", "--in-flight-images", "1000", "--state-dir",
                        state.path().string(), "-o", (state.path() / "first.jsonl").string(),
                        inputs.dir.path().string()}),
      log_file, broker_environment());
  const std::string job_id = wait_for_job_id(log_file);
  // Killed once every image is published and the broken ones are answered (journaled).
  REQUIRE(wait_until([&] {
    const auto replay = JobJournal::replay(state.path(), job_id);
    return replay.published.size() == inputs.total() && replay.results.size() == inputs.expected_error.size();
  }));
  submit.kill_hard();
  // Lines go out as soon as every earlier image is answered: the killed publisher's file holds whole lines of
  // answered images only (here broken files at the front of the input order, if any), the resumed job's all.
  if (std::filesystem::exists(state.path() / "first.jsonl")) {
    const auto written = lines_by_image(read_text_file(state.path() / "first.jsonl"));
    CHECK(written.size() <= inputs.expected_error.size());
    for (const auto& [image, line] : written) CHECK(inputs.expected_error.count(image) == 1);
  }

  auto classify = start_worker("classify", state.path() / "classify.log");
  const auto out = state.path() / "resumed.jsonl";
  const auto resumed = run_submit({"--resume", job_id, "--idle-timeout", "120", "--state-dir",
                                   state.path().string(), "-o", out.string()});
  INFO(resumed.err);
  CHECK(resumed.exit_code == 3);
  CHECK_THAT(resumed.err, Catch::Contains(std::to_string(inputs.expected_error.size()) + " of " +
                                          std::to_string(inputs.total()) + " images answered before, " +
                                          std::to_string(inputs.total() - inputs.expected_error.size()) +
                                          " published and awaited, 0 to publish"));
  check_every_image_answered(inputs, lines_by_image(read_text_file(out)));
  // A result journaled but not yet acked when the kill came is delivered again (a duplicate, written once):
  // at most the broken files' results, the only ones answered before the kill.
  CHECK(duplicates_reported(resumed.err) <= inputs.expected_error.size());
  // Not re-run: preprocess saw each broken file once, before the kill.
  const std::string preprocess_log = read_text_file(state.path() / "preprocess.log");
  CHECK(count_lines(preprocess_log, job_id, "failed in preprocess") == inputs.expected_error.size());
  // The job is done: its record and journal are gone, and resuming it again is refused.
  CHECK_FALSE(std::filesystem::exists(job_journal_file(state.path(), job_id)));
  const auto again = run_submit({"--resume", job_id, "--state-dir", state.path().string()});
  CHECK(again.exit_code == 2);
  CHECK_THAT(again.err, Catch::Contains("already finished"));
}

TEST_CASE("a publisher killed mid-submit is resumed: only unconfirmed images are published again",
          "[e2e][broker][resume]") {
  InputFolder inputs(4);
  TempDir state("imgpipe-state");
  const auto log_file = state.path() / "submit.log";
  const auto address = BrokerAddress::parse(broker_url());
  BrokerSession session(address, {});
  session.declare_topology();
  session.purge(queues::images);
  // No workers: what was published stays countable in imgpipe.images. One image per message, slowly.
  ChildProcess submit(worker_binary("imgpipe"),
                      submit_arguments({"--batch-size", "1", "--test-publish-delay-ms", "40", "--state-dir",
                                        state.path().string(), inputs.dir.path().string()}),
                      log_file, broker_environment());
  const std::string job_id = wait_for_job_id(log_file);
  std::size_t confirmed = 0;
  REQUIRE(wait_until([&] { return !JobJournal::replay(state.path(), job_id).published.empty(); }));
  submit.kill_hard();
  confirmed = JobJournal::replay(state.path(), job_id).published.size();
  INFO("journaled as published before the kill: " << confirmed << " of " << inputs.total());
  REQUIRE(confirmed < inputs.total());  // killed mid-submit
  std::this_thread::sleep_for(500ms);   // let the broker settle what the dead connection had sent
  const std::size_t enqueued = session.message_count(queues::images);
  CHECK(enqueued >= confirmed);

  Cluster cluster;
  const auto out = state.path() / "resumed.jsonl";
  const auto resumed = run_submit({"--resume", job_id, "--idle-timeout", "120", "--state-dir",
                                   state.path().string(), "-o", out.string()});
  INFO(resumed.err);
  CHECK(resumed.exit_code == 3);
  CHECK_THAT(resumed.err, Catch::Contains(std::to_string(inputs.total() - confirmed) + " to publish"));
  check_every_image_answered(inputs, lines_by_image(read_text_file(out)));
  // Images published but not yet journaled when the publisher died went out twice: exactly those results
  // are the duplicates, reported and not written twice.
  CHECK(duplicates_reported(resumed.err) == enqueued - confirmed);
  for (const char* queue : {queues::images, queues::pixels, queues::features})
    CHECK(session.message_count(queue) == 0);
}

TEST_CASE("resuming an unknown job or one whose result queue is gone fails with the reason",
          "[e2e][broker][resume]") {
  TempDir state("imgpipe-state");
  const auto unknown = run_submit({"--resume", "0123456789abcdef", "--state-dir", state.path().string()});
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.err, Catch::Contains("unknown job 0123456789abcdef"));
  CHECK(run_submit({"--resume", "x", "some.jpg"}).exit_code == 2);

  InputFolder inputs(1);
  const auto log_file = state.path() / "submit.log";
  ChildProcess submit(worker_binary("imgpipe"),
                      submit_arguments({"--state-dir", state.path().string(), inputs.dir.path().string()}),
                      log_file, broker_environment());
  const std::string job_id = wait_for_job_id(log_file);
  REQUIRE(wait_until(
      [&] { return JobJournal::replay(state.path(), job_id).published.size() == inputs.total(); }));
  submit.kill_hard();
  BrokerSession session(BrokerAddress::parse(broker_url()), {});
  session.delete_queue(queues::results_for(job_id));  // as x-expires would, a day later
  const auto gone = run_submit({"--resume", job_id, "--state-dir", state.path().string()});
  CHECK(gone.exit_code == 1);
  CHECK_THAT(gone.err, Catch::Contains("result queue " + queues::results_for(job_id) + " is gone"));
  session.purge(queues::images);  // no workers ran: the job's batches are still there
}
