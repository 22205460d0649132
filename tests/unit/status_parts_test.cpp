// The pieces of `imgpipe status` that need no broker: management URLs and job state files.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iterator>

#include "imgpipe/job/state.hpp"
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
