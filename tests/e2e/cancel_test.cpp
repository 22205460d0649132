// `imgpipe cancel JOB` against the real broker, real workers and a job of thousands of real images: the
// publisher stops and answers the rest "cancelled", the workers drop the job's batches without running a
// stage on them (counted by their metrics), also a worker that starts after the cancel, and the next job
// is untouched.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "e2e_support.hpp"
#include "imgpipe/job/cancel.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"
#include "publisher_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;

namespace {

using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& condition, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

// A worker started with the default metrics port serves on the first free one from 9464: its start line
// says which.
int metrics_port(const std::filesystem::path& log) {
  int port = 0;
  eventually(
      [&] {
        const std::string text = std::filesystem::exists(log) ? read_text_file(log) : "";
        const std::string marker = "metrics http://127.0.0.1:";
        const auto at = text.find(marker);
        if (at != std::string::npos) port = std::stoi(text.substr(at + marker.size()));
        return port != 0;
      },
      30s);
  REQUIRE(port != 0);
  return port;
}

// The value of an unlabelled-but-for-stage counter in a worker's /metrics.
double counter(int port, const std::string& name) {
  std::istringstream text(http_get(port, "/metrics"));
  std::string line;
  while (std::getline(text, line)) {
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0)
      return std::stod(line.substr(line.rfind(' ') + 1));
  }
  FAIL("no " << name << " in the metrics on port " << port);
  return 0;
}

std::uint32_t ready(BrokerSession& session, const char* queue) {
  return session.message_count(queue);
}

RunResult tool(const std::vector<std::string>& arguments) {
  return run_tool(worker_binary("imgpipe"), arguments, 120, broker_environment());
}

}  // namespace

TEST_CASE(
    "imgpipe cancel stops a running job of thousands of images: the publisher answers the rest "
    "\"cancelled\", the stage queues drain without stage work, also on a worker started after the cancel, "
    "the result queue is gone, and the next job is untouched",
    "[e2e][broker][cancel]") {
  InputFolder inputs(250);  // 2,500 Fashion-MNIST PNGs, 4 photographs, 5 broken files
  TempDir work("imgpipe-cancel");
  const auto state_dir = work.path() / "state";
  const auto results_file = work.path() / "results.jsonl";
  const auto address = BrokerAddress::parse(broker_url());
  BrokerSession session(address, {});
  session.declare_topology();
  for (const auto& stage : stage_graph()) session.purge(stage.queue);

  // Both first stages slowed down (a sleep before each batch, in the compute thread like a slow model), so
  // the job is still queued in both when it is cancelled.
  auto preprocess =
      start_worker("preprocess", work.path() / "preprocess.log", {"--fault-handler-delay-ms", "100"});
  auto feature = start_worker("feature", work.path() / "feature.log", {"--fault-handler-delay-ms", "300"});
  auto classify = start_worker("classify", work.path() / "classify.log");
  const int preprocess_port = metrics_port(work.path() / "preprocess.log");
  const int feature_port = metrics_port(work.path() / "feature.log");

  const auto submit_log = work.path() / "submit.log";
  ChildProcess submit(
      worker_binary("imgpipe"),
      // A window wide enough for the whole job, so that it piles up in the stage queues.
      submit_arguments({"--batch-size", "8", "--in-flight-images", "100000", "--test-publish-delay-ms", "20",
                        "--idle-timeout", "300", "--state-dir", state_dir.string(), "-o",
                        results_file.string(), inputs.dir.path().string()}),
      submit_log, broker_environment());
  std::optional<std::string> job_id;
  REQUIRE(eventually([&] { return (job_id = job_id_in(submit_log)).has_value(); }, 60s));
  // Some results come back, then the feature worker goes away: the job's pixel batches pile up.
  REQUIRE(eventually([&] { return counter(feature_port, "imgpipe_batches_total") >= 3; }, 120s));
  CHECK(feature->stop() == 0);
  REQUIRE(eventually([&] { return ready(session, queues::pixels) >= 10; }, 60s));
  REQUIRE(eventually([&] { return ready(session, queues::images) >= 60; }, 60s));
  const std::uint32_t images_waiting = ready(session, queues::images);

  const auto cancelled_at = std::chrono::steady_clock::now();
  const auto cancel = tool({"cancel", *job_id, "--state-dir", state_dir.string()});
  INFO(cancel.err);
  REQUIRE(cancel.exit_code == 0);
  CHECK_THAT(cancel.err, Catch::Contains("job " + *job_id + " cancelled"));
  // The record is confirmed on the broker once the command returns: from here on, only the batch that was
  // computing when the worker read it (or one started in the moment before) may still count.
  const double preprocessed_at_cancel = counter(preprocess_port, "imgpipe_batches_total");

  // The publisher stops, writes one line per input, the rest "cancelled", and exits "some images failed".
  const int publisher_exit = submit.wait(60);
  INFO(read_text_file(submit_log));
  CHECK(publisher_exit == 3);
  // It was still publishing (20 ms between batches): what it never published is not published any more.
  std::smatch published;
  const std::string submit_text = read_text_file(submit_log);
  REQUIRE(std::regex_search(submit_text, published,
                            std::regex("was cancelled after publishing ([0-9]+) of ([0-9]+) images")));
  CHECK(std::stoul(published[1].str()) < std::stoul(published[2].str()));
  const auto lines = lines_by_image(read_text_file(results_file));
  CHECK(lines.size() == inputs.total());
  // Every image it never published is among them; the results computed before the cancel are kept (the
  // feature worker ran at least 3 batches of 8 before it stopped).
  std::size_t cancelled_lines = 0;
  std::size_t classified = 0;
  for (const auto& [image, line] : lines) {
    if (line["error"].is_null()) ++classified;
    if (line["error"] != "cancelled") continue;
    ++cancelled_lines;
    CHECK(line["label"].is_null());
  }
  CHECK(cancelled_lines >= std::stoul(published[2].str()) - std::stoul(published[1].str()));
  CHECK(classified >= 16);

  // The live preprocess worker drops what was queued for it: no stage work beyond the batch it was in.
  CHECK(eventually([&] { return ready(session, queues::images) == 0; }, 15s));
  const double drain_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - cancelled_at).count();
  CHECK(drain_seconds < 15);
  CHECK(counter(preprocess_port, "imgpipe_batches_total") <= preprocessed_at_cancel + 2);
  CHECK(counter(preprocess_port, "imgpipe_cancelled_dropped_total") >= images_waiting / 2);

  // The result queue is gone, and status says cancelled.
  CHECK_FALSE(result_queue_exists(address, {}, *job_id));
  auto environment = broker_environment();
  if (const char* management = std::getenv("IMGPIPE_TEST_MANAGEMENT"))
    environment["IMGPIPE_MANAGEMENT"] = management;
  const auto status =
      run_tool(worker_binary("imgpipe"),
               {"status", "--job", *job_id, "--state-dir", state_dir.string(), "--json"}, 60, environment);
  INFO(status.err);
  REQUIRE(status.exit_code == 0);
  const auto answer = nlohmann::json::parse(status.out);
  CHECK(answer["job"]["state"] == "cancelled");
  CHECK(answer["job"]["eta_seconds"].is_null());
  CHECK(answer["job"]["result_queue"]["exists"] == false);
  // A cancelled job is not resumed.
  const auto resumed = tool({"submit", "--resume", *job_id, "--state-dir", state_dir.string()});
  CHECK(resumed.exit_code == 2);
  CHECK_THAT(resumed.err, Catch::Contains("was cancelled"));

  // A feature worker that starts after the cancel drops the job's pixel batches unprocessed, fast.
  const std::uint32_t pixels_waiting = ready(session, queues::pixels);
  CHECK(pixels_waiting >= 10);
  auto late_feature =
      start_worker("feature", work.path() / "late-feature.log", {"--fault-handler-delay-ms", "300"});
  const int late_port = metrics_port(work.path() / "late-feature.log");
  const auto late_started = std::chrono::steady_clock::now();
  CHECK(eventually([&] { return ready(session, queues::pixels) == 0; }, 15s));
  const double late_drain_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - late_started).count();
  CHECK(eventually([&] { return counter(late_port, "imgpipe_cancelled_dropped_total") >= pixels_waiting; },
                   10s));
  CHECK(counter(late_port, "imgpipe_batches_total") == 0);  // not one forward pass for the cancelled job
  CHECK(counter(late_port, "imgpipe_images_processed_total") == 0);
  CHECK(eventually([&] { return ready(session, queues::features) == 0; }, 15s));
  WARN("CANCEL-SUMMARY published="
       << published[1] << "/" << published[2] << " classified=" << classified << " cancelled_lines="
       << cancelled_lines << " images_waiting=" << images_waiting << " images_drained_s=" << drain_seconds
       << " preprocess_dropped=" << counter(preprocess_port, "imgpipe_cancelled_dropped_total")
       << " preprocess_batches_after_cancel="
       << counter(preprocess_port, "imgpipe_batches_total") - preprocessed_at_cancel
       << " pixels_waiting=" << pixels_waiting << " late_feature_drain_s=" << late_drain_seconds
       << " late_feature_dropped=" << counter(late_port, "imgpipe_cancelled_dropped_total")
       << " late_feature_batches=" << counter(late_port, "imgpipe_batches_total"));

  // The next job goes through the same workers untouched.
  InputFolder next(2);
  const auto second = run_submit({"--idle-timeout", "120", next.dir.path().string()});
  INFO(second.err);
  CHECK(second.exit_code == 3);  // its broken files, each with its own line
  const auto second_lines = lines_by_image(second.out);
  CHECK(second_lines.size() == next.total());
  for (const auto& [image, line] : second_lines) {
    INFO(image);
    CHECK(line["error"] != "cancelled");
    if (next.true_class.count(image) > 0) CHECK(line["error"].is_null());
  }
  CHECK(counter(late_port, "imgpipe_batches_total") > 0);
}

TEST_CASE("imgpipe cancel refuses a job nobody knows, and a malformed id", "[e2e][broker][cancel]") {
  TempDir state;
  const auto unknown = tool({"cancel", "00000000deadbeef", "--state-dir", state.path().string()});
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.err, Catch::Contains("no job 00000000deadbeef"));
  const auto malformed = tool({"cancel", "../x", "--state-dir", state.path().string()});
  CHECK(malformed.exit_code == 2);
  CHECK_THAT(malformed.err, Catch::Contains("is not a job id"));
}
