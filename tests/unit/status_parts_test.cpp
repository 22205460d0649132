// The pieces of `imgpipe status` that need no broker: management URLs, job state files, the bottleneck rule
// and the rolling ETA.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iterator>

#include "imgpipe/job/state.hpp"
#include "imgpipe/ops/bottleneck.hpp"
#include "imgpipe/ops/management_api.hpp"
#include "test_support.hpp"

using namespace imgpipe;

TEST_CASE("a management URL names host, port, credentials and an optional path prefix", "[unit][status]") {
  const auto plain = ManagementAddress::parse("http://ops:s%40cret@rabbit.internal:15673/");
  CHECK(plain.host == "rabbit.internal");
  CHECK(plain.port == 15673);
  CHECK(plain.user == "ops");
  CHECK(plain.password == "s@cret");
  CHECK(plain.path_prefix.empty());
  CHECK(plain.redacted() == "http://ops:***@rabbit.internal:15673/");

  const auto prefixed = ManagementAddress::parse("http://rabbit/rabbitmq/");
  CHECK(prefixed.port == 15672);
  CHECK(prefixed.user == "guest");
  CHECK(prefixed.path_prefix == "/rabbitmq");

  CHECK_THROWS_WITH(ManagementAddress::parse("amqp://rabbit:5672/"), Catch::Contains("http://"));
  CHECK_THROWS_WITH(ManagementAddress::parse("https://rabbit/"), Catch::Contains("https is not supported"));
  CHECK_THROWS_WITH(ManagementAddress::parse("http://u:p@rabbit:99999/"), Catch::Contains("port"));
}

TEST_CASE("by default the management API is the broker's host and credentials on port 15672",
          "[unit][status]") {
  const auto address =
      ManagementAddress::for_broker(BrokerAddress::parse("amqp://ops:pw@mq.example:5673/prod"));
  CHECK(address.host == "mq.example");
  CHECK(address.port == 15672);
  CHECK(address.user == "ops");
  CHECK(address.password == "pw");
}

TEST_CASE("a job state file is replaced whole and reads back what the job reported", "[unit][status]") {
  imgpipe::test::TempDir dir;
  std::vector<JobInput> inputs = {{"a", "a.png"}, {"b", "b.png"}, {"c", "c.png"}};
  JobResults results(inputs);
  JobState initial;
  initial.job = "0011aabb";
  initial.model = "fashion";
  initial.total = inputs.size();
  initial.result_queue = "imgpipe.results.0011aabb";
  JobStateFile file(dir.path(), initial);
  CHECK(file.path() == dir.path() / "jobs" / "0011aabb.json");

  const auto started = JobState::read(dir.path(), "0011aabb");
  CHECK(started.total == 3);
  CHECK(started.done == 0);
  CHECK_FALSE(started.finished);
  CHECK(started.pid > 0);

  ImageResult ok;
  ok.image_id = "a";
  ok.label = "shirt";
  results.add(ok, "1");
  ImageResult broken;
  broken.image_id = "b";
  broken.error = "decode failed";
  results.add(broken, "1");
  file.update(results, std::chrono::milliseconds(0));
  const auto running = JobState::read(dir.path(), "0011aabb");
  CHECK(running.done == 2);
  CHECK(running.failed == 1);
  CHECK(running.updated >= running.started);

  file.finish(results, "stalled");
  const auto ended = JobState::read(dir.path(), "0011aabb");
  REQUIRE(ended.finished);
  CHECK(*ended.finished >= ended.started);
  CHECK(ended.error == "stalled");
  // Only the state file is left: the temporary each write goes through is renamed away.
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path() / "jobs"), {}) == 1);
}

TEST_CASE("a job id that is not a plain name is refused before it becomes a path", "[unit][status]") {
  imgpipe::test::TempDir dir;
  CHECK_THROWS_AS(JobState::read(dir.path(), "../../etc/passwd"), std::invalid_argument);
  CHECK_THROWS_WITH(JobState::read(dir.path(), "feedbeef"), Catch::Contains("no state for job feedbeef"));
}

TEST_CASE("a job whose publisher on this host died without finishing is abandoned, not running",
          "[unit][status]") {
  imgpipe::test::TempDir dir;
  JobState initial;
  initial.job = "00dead00";
  initial.total = 5;
  JobStateFile file(dir.path(), initial);  // records this host and this (live) process
  auto state = JobState::read(dir.path(), "00dead00");
  CHECK(state.phase() == "running");

  // A pid that surely belongs to no process any more: a child that has exited and been reaped.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  REQUIRE(::waitpid(child, nullptr, 0) == child);
  state.pid = child;
  CHECK(state.phase() == "abandoned");

  state.host = "some-other-host";  // cannot be checked from here
  CHECK(state.phase() == "running");

  state.finished = state.updated;
  CHECK(state.phase() == "finished");
  state.error = "stalled";
  CHECK(state.phase() == "failed");
}

namespace {

StageFlow flow(const std::string& stage, std::uint64_t ready, std::uint64_t consumers, double out_rate,
               std::uint64_t unacked = 0, double in_rate = 0) {
  StageFlow f;
  f.stage = stage;
  f.ready = ready;
  f.unacked = unacked;
  f.consumers = consumers;
  f.out_rate = out_rate;
  f.in_rate = in_rate;
  return f;
}

}  // namespace

TEST_CASE("the bottleneck is the last stage with a backlog: every stage after it is starved",
          "[unit][status]") {
  // A slow feature stage: its queue grows while classify waits; preprocess still has the job's tail queued.
  const auto feature_bound =
      find_bottleneck({flow("preprocess", 120, 1, 40.0, 4, 200.0), flow("feature", 60, 1, 3.0, 4, 40.0),
                       flow("classify", 0, 1, 3.0, 1, 3.0)});
  CHECK(feature_bound.kind == Bottleneck::Kind::stage);
  CHECK(feature_bound.stage == "feature");
  CHECK_THAT(feature_bound.text, Catch::StartsWith("feature-bound: add feature replicas"));
  CHECK_THAT(feature_bound.text, Catch::Contains("60 batches waiting, 20.0 s of work at 3.0 batches/s") &&
                                     Catch::Contains("classify starved"));

  const auto preprocess_bound = find_bottleneck(
      {flow("preprocess", 300, 2, 5.0, 8), flow("feature", 1, 1, 5.0, 2), flow("classify", 0, 1, 5.0)});
  CHECK(preprocess_bound.stage == "preprocess");
  CHECK_THAT(preprocess_bound.text, Catch::Contains("feature, classify starved"));

  const auto classify_bound = find_bottleneck(
      {flow("preprocess", 0, 1, 9.0, 2), flow("feature", 0, 1, 9.0, 2), flow("classify", 50, 1, 2.0, 4)});
  CHECK(classify_bound.stage == "classify");
  CHECK_THAT(classify_bound.text, !Catch::Contains("starved"));
}

TEST_CASE("a few messages that a fast stage clears in moments are no backlog", "[unit][status]") {
  // Classify has 3 waiting but clears 100 a second; feature has one per worker waiting: no backlog anywhere.
  const auto keeping_up =
      find_bottleneck({flow("preprocess", 0, 2, 10.0, 8, 10.0), flow("feature", 3, 3, 10.0, 12),
                       flow("classify", 3, 1, 100.0, 4)});
  CHECK(keeping_up.kind == Bottleneck::Kind::publisher);
  CHECK_THAT(keeping_up.text, Catch::StartsWith("no backlog: publisher-bound"));
  // More replicas hold more in flight: 4 ready with 4 consumers is what they are about to take.
  CHECK(find_bottleneck({flow("feature", 4, 4, 0.5, 16)}).kind == Bottleneck::Kind::publisher);
  // The same queue with no processing rate yet (the management plugin has not sampled it) is a backlog.
  CHECK(find_bottleneck({flow("feature", 10, 1, 0.0, 4)}).kind == Bottleneck::Kind::stage);
}

TEST_CASE("a stage with messages and no workers stalls the pipeline, and nothing at all is idle",
          "[unit][status]") {
  const auto stalled = find_bottleneck(
      {flow("preprocess", 0, 1, 0.0), flow("feature", 40, 0, 0.0), flow("classify", 500, 1, 30.0)});
  CHECK(stalled.kind == Bottleneck::Kind::no_workers);
  CHECK(stalled.stage == "feature");
  CHECK_THAT(stalled.text, Catch::Contains("start imgpipe-feature"));

  // Deliveries unacked mean a worker holds them, whatever the (separately sampled) consumer count says.
  CHECK(find_bottleneck({flow("feature", 40, 0, 2.0, 3)}).kind != Bottleneck::Kind::no_workers);

  const auto idle = find_bottleneck({flow("preprocess", 0, 1, 0.0), flow("feature", 0, 0, 0.0)});
  CHECK(idle.kind == Bottleneck::Kind::idle);
  StageFlow undeclared;
  undeclared.stage = "classify";
  undeclared.exists = false;
  CHECK(find_bottleneck({undeclared}).kind == Bottleneck::Kind::idle);
}

TEST_CASE("a job's ETA follows its rate over the last 30 s, not its average since the start",
          "[unit][status]") {
  JobState state;
  state.job = "0011ccdd";
  state.total = 1000;
  state.started = 1000.0;
  // 60 s at 2 images/s, then workers were added: 20 images/s for the last 20 s.
  for (int t = 0; t <= 60; t += 5) state.recent.push_back({1000.0 + t, static_cast<std::size_t>(2 * t)});
  for (int t = 65; t <= 80; t += 5)
    state.recent.push_back({1000.0 + t, static_cast<std::size_t>(120 + 20 * (t - 60))});
  state.done = state.recent.back().done;  // 520
  state.updated = state.recent.back().time;
  const auto rate = rolling_rate(state.recent);
  REQUIRE(rate);
  // The window [1050, 1080]: from 100 done to 520 done in 30 s.
  CHECK(*rate == Approx(14.0));
  const auto eta = eta_seconds(state, state.updated);
  REQUIRE(eta);
  CHECK(*eta == Approx(480.0 / 14.0));
  // The whole-job average (6.5 images/s) would have said 74 s.
  CHECK(*eta < 40.0);
  // Later, with nothing new: the ETA counts down from the last sample.
  CHECK(*eta_seconds(state, state.updated + 10) == Approx(480.0 / 14.0 - 10));

  // Results that come more rarely than the window: the two newest samples give the rate.
  CHECK(*rolling_rate({{0, 0}, {100, 50}, {200, 100}}) == Approx(0.5));
  CHECK_FALSE(rolling_rate({{0, 0}}));
  CHECK_FALSE(rolling_rate({{10, 0}, {10.5, 5}}));  // too short a span to say

  // No ETA for a stalled job, a finished one or a cancelled one.
  JobState stalled = state;
  stalled.recent = {{1000, 100}, {1030, 100}};
  CHECK_FALSE(eta_seconds(stalled, 1030));
  JobState cancelled = state;
  cancelled.cancelled = 1090.0;
  CHECK(cancelled.phase() == "cancelled");
  CHECK_FALSE(eta_seconds(cancelled, 1090));
}

TEST_CASE("a state file keeps a minute of progress samples and reads back cancelled jobs", "[unit][status]") {
  imgpipe::test::TempDir dir;
  std::vector<JobInput> inputs = {{"a", "a.png"}, {"b", "b.png"}};
  JobResults results(inputs);
  JobState initial;
  initial.job = "00aa11bb";
  initial.total = 2;
  initial.batch_size = 16;
  JobStateFile file(dir.path(), initial);
  ImageResult one;
  one.image_id = "a";
  one.label = "x";
  results.add(one, "1");
  file.update(results, std::chrono::milliseconds(0));
  auto state = JobState::read(dir.path(), "00aa11bb");
  CHECK(state.batch_size == 16);
  REQUIRE(state.recent.size() == 2);
  CHECK(state.recent.front().done == 0);
  CHECK(state.recent.back().done == 1);
  CHECK_FALSE(state.cancelled);

  // `imgpipe cancel` from another process: the file says so, and the job's phase is cancelled from then on.
  CHECK(mark_job_cancelled(dir.path(), "00aa11bb"));
  state = JobState::read(dir.path(), "00aa11bb");
  REQUIRE(state.cancelled);
  CHECK(state.phase() == "cancelled");
  CHECK_FALSE(mark_job_cancelled(dir.path(), "00ffffff"));

  // The publisher's own last word keeps it cancelled, and the images it never got answered say why.
  file.mark_cancelled();
  CHECK(results.answer_rest("cancelled") == 1);
  CHECK(results.complete());
  CHECK(results.find("b") == nullptr);  // answered by the rest error, not a result of its own
  CHECK(results.rest_error() == "cancelled");
  file.finish(results);
  state = JobState::read(dir.path(), "00aa11bb");
  CHECK(state.phase() == "cancelled");
  CHECK(state.failed == 1);
}
