// Scenario 6 of issue 4: broker memory and disk alarms in the middle of a job. Under an alarm RabbitMQ stops
// reading from every connection that publishes, so the publisher and each worker (which publishes its
// outputs before acking its inputs) hang in a publish or wait for confirms that do not come. That must cost
// time only: no process dies, no image is lost or doubled, and everything flows again once it clears.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "e2e_support.hpp"
#include "imgpipe/ops/management_api.hpp"

using namespace imgpipe;
using namespace imgpipe::test;

namespace {

using namespace std::chrono_literals;

constexpr int worker_heartbeat_seconds = 2;

// Runs scripts/broker with one verb and returns its standard output.
std::string broker_script(const std::string& verb) {
  const char* script = std::getenv("IMGPIPE_TEST_BROKER_CTL");
  REQUIRE(script != nullptr);
  const auto result = run_tool(script, {verb}, 120);
  INFO("scripts/broker " << verb << ": " << result.err);
  REQUIRE(result.exit_code == 0);
  return result.out;
}

// client name -> state, for every client connection of the broker (its connection_name is NAME@host:port).
std::multimap<std::string, std::string> connection_states() {
  std::multimap<std::string, std::string> states;
  std::istringstream lines(broker_script("connections"));
  std::string name;
  std::string state;
  while (lines >> name >> state) states.emplace(name.substr(0, name.rfind('@')), state);
  return states;
}

// Polls `condition` every 200 ms. The limit only keeps a broken run from hanging CI; it is no pass criterion.
template <typename Condition>
void wait_for(const std::string& what, Condition condition, std::chrono::seconds limit = 180s) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    INFO("waiting for " << what);
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    std::this_thread::sleep_for(200ms);
  }
}

ManagementClient management() {
  const char* url = std::getenv("IMGPIPE_TEST_MANAGEMENT");
  REQUIRE(url != nullptr);
  return ManagementClient(ManagementAddress::parse(url));
}

std::uint64_t queue_depth(const ManagementClient& api, const std::string& queue) {
  const auto stats = api.queue("/", queue);
  return stats ? stats->depth() : 0;
}

bool blocked(const std::string& connection_name) {
  const auto states = connection_states();
  const auto [first, last] = states.equal_range(connection_name);
  for (auto it = first; it != last; ++it)
    if (it->second == "blocked") return true;
  return false;
}

std::vector<std::string> submit_arguments(const InputFolder& inputs, const TempDir& out,
                                          const std::string& name) {
  // The broker URL (with its password) goes in the environment: see broker_environment().
  return {"submit",
          "--models",
          models_dir().string(),
          "--model",
          "fashion",
          "--batch-size",
          "4",
          "--state-dir",
          (out.path() / "state").string(),
          "-o",
          (out.path() / (name + ".jsonl")).string(),
          inputs.dir.path().string()};
}

// Waits for a submit to exit by itself, then checks its output: one line per input, labels for the images
// that have one, errors for the broken files (exit 3).
void check_job(ChildProcess& submit, const InputFolder& inputs, const TempDir& out, const std::string& name) {
  while (submit.running()) std::this_thread::sleep_for(200ms);
  INFO(name << " log: " << read_text_file(out.path() / (name + ".log")));
  CHECK(submit.stop() == 3);
  const auto lines = lines_by_image(read_text_file(out.path() / (name + ".jsonl")));  // fails on a duplicate
  CHECK(lines.size() == inputs.total());
  std::size_t labelled = 0;
  for (const auto& [path, line] : lines) labelled += line["label"].is_string();
  CHECK(labelled == inputs.true_class.size() + inputs.photos.size());
}

// Two jobs through a real cluster and `alarm` (scripts/broker alarm or disk-alarm). Job 1 is in flight when
// the alarm comes: the `held` worker is stopped (SIGSTOP) until its input queue holds job 1's batches, so
// the alarm finds it with work to do and blocks its publishes. Job 2 is submitted during the alarm, so its
// publisher blocks too. The alarm is held for three worker heartbeat intervals once both are blocked.
void run_jobs_through_alarm(const std::string& alarm, const std::string& held,
                            const std::string& held_input) {
  InputFolder first_inputs(30);
  InputFolder second_inputs(2);
  Cluster cluster(false, {"--heartbeat", std::to_string(worker_heartbeat_seconds)});
  const ManagementClient api = management();
  const std::uint64_t dead_before = queue_depth(api, "imgpipe.dead");  // earlier specs may leave some
  TempDir out;

  // The management API's figures lag a second or more: first see the queue empty, so that a depth seen
  // below is this job's and not what an earlier spec left in the figures.
  wait_for(held_input + " empty", [&] { return queue_depth(api, held_input) == 0; });
  const pid_t held_pid = cluster.worker(held).pid();
  REQUIRE(::kill(held_pid, SIGSTOP) == 0);
  ChildProcess first(worker_binary("imgpipe"), submit_arguments(first_inputs, out, "first"),
                     out.path() / "first.log", broker_environment());
  wait_for(held_input + " holding batches of job 1", [&] { return queue_depth(api, held_input) > 0; });

  broker_script(alarm);
  REQUIRE(::kill(held_pid, SIGCONT) == 0);
  ChildProcess second(worker_binary("imgpipe"), submit_arguments(second_inputs, out, "second"),
                      out.path() / "second.log", broker_environment());
  wait_for("imgpipe-" + held + " and a publisher blocked",
           [&] { return blocked("imgpipe-" + held) && blocked("imgpipe-publisher"); });
  const auto blocked_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - blocked_since <
         3 * std::chrono::seconds(worker_heartbeat_seconds)) {
    std::this_thread::sleep_for(500ms);
    CHECK(first.running());
    CHECK(second.running());
    for (const std::string role : {"preprocess", "feature", "classify"}) {
      INFO(role);
      CHECK(cluster.worker(role).running());
    }
  }
  // Still blocked after three heartbeat intervals: the broker kept the connections, and so did we.
  CHECK(blocked("imgpipe-" + held));
  CHECK(blocked("imgpipe-publisher"));

  // Both were told why (connection.blocked), and say so in their logs.
  CHECK_THAT(read_text_file(cluster.log_of(held)),
             Catch::Contains("the broker blocked our publishes (low on"));
  CHECK_THAT(read_text_file(out.path() / "second.log"),
             Catch::Contains("the broker blocked publishing for job"));

  broker_script("alarm-clear");
  check_job(first, first_inputs, out, "first");
  check_job(second, second_inputs, out, "second");
  for (const std::string role : {"preprocess", "feature", "classify"}) {
    INFO(role << " log: " << read_text_file(cluster.log_of(role)));
    CHECK(cluster.worker(role).running());
  }
  for (const std::string queue : {"imgpipe.images", "imgpipe.pixels", "imgpipe.features"})
    wait_for(
        queue + " empty", [&] { return queue_depth(api, queue) == 0; }, 30s);
  CHECK(queue_depth(api, "imgpipe.dead") == dead_before);
}

}  // namespace

TEST_CASE("a memory alarm mid-job blocks publishers, and once it clears every image has exactly one line",
          "[e2e][broker][alarm]") {
  run_jobs_through_alarm("alarm", "classify", "imgpipe.features");
}

TEST_CASE("a disk alarm mid-job blocks publishers, and once it clears every image has exactly one line",
          "[e2e][broker][alarm]") {
  run_jobs_through_alarm("disk-alarm", "feature", "imgpipe.pixels");
}
