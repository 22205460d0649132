// `imgpipe status` against the real test broker and its management plugin (scripts/broker enables it on
// loopback): what the tool prints must be what the broker holds.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <regex>
#include <thread>

#include "e2e_support.hpp"
#include "imgpipe/job/inputs.hpp"
#include "imgpipe/job/state.hpp"
#include "imgpipe/ops/management_api.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/transport/amqp/broker.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"
#include "imgpipe/transport/amqp/job_channel.hpp"

using namespace imgpipe;
using namespace imgpipe::test;

namespace {

std::string management_url() {
  const char* value = std::getenv("IMGPIPE_TEST_MANAGEMENT");
  if (value == nullptr || *value == '\0') {
    FAIL(
        "IMGPIPE_TEST_MANAGEMENT is not set: run the tests through scripts/test (or export "
        "IMGPIPE_TEST_MANAGEMENT=$(scripts/broker management-url))");
  }
  return value;
}

// Both URLs carry a password, so they reach the tool through its environment, as they would in production.
RunResult status(const std::vector<std::string>& extra, const std::string& management = management_url()) {
  std::vector<std::string> arguments = {"status"};
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  auto environment = broker_environment();
  environment["IMGPIPE_MANAGEMENT"] = management;
  return run_tool(worker_binary("imgpipe"), arguments, 60, environment);
}

nlohmann::json status_json(const std::vector<std::string>& extra = {}) {
  auto arguments = extra;
  arguments.push_back("--json");
  const auto result = status(arguments);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  return nlohmann::json::parse(result.out);
}

const nlohmann::json& queue_entry(const nlohmann::json& status, const std::string& name) {
  for (const auto& queue : status["queues"]) {
    if (queue["queue"] == name) return queue;
  }
  FAIL("no entry for " << name << " in " << status.dump());
  throw std::logic_error("unreachable");
}

// The management plugin samples queues every few seconds (1 s on the test broker): poll until the figures
// catch up with what the test just did, and return the last answer either way so the CHECKs show it.
nlohmann::json status_when(const std::function<bool(const nlohmann::json&)>& settled,
                           const std::vector<std::string>& extra = {}) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  nlohmann::json answer = status_json(extra);
  while (!settled(answer) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    answer = status_json(extra);
  }
  return answer;
}

std::uint64_t consumers_of(const nlohmann::json& status, const std::string& name) {
  const auto& queue = queue_entry(status, name);
  return queue["exists"].get<bool>() ? queue["consumers"].get<std::uint64_t>() : 0;
}

// A port nothing listens on: bind an ephemeral port, then give it back.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  REQUIRE(bound);
  return ntohs(address.sin_port);
}

}  // namespace

TEST_CASE("imgpipe status shows the depth and consumers of each stage queue as the broker has them",
          "[e2e][broker][status]") {
  const auto address = BrokerAddress::parse(broker_url());
  BrokerSession session(address, {});
  session.declare_topology();
  // The dead-letter queue has no consumer in normal operation, so what we put there stays to be counted.
  session.purge(queues::dead);
  {
    JobChannel channel(address, {}, "status-test-" + std::to_string(::getpid()), {});
    for (int i = 0; i < 3; ++i) channel.publish({queues::dead, {'x'}, {{"x-test", "status"}}});
    channel.wait_confirms(std::chrono::seconds(30));
    channel.delete_result_queue();
  }
  REQUIRE(session.message_count(queues::dead) == 3);

  // Also wait for the consumers of a cluster that the previous spec stopped a moment ago to disappear from
  // the plugin's figures, which lag the broker by a sampling interval.
  const auto idle = status_when([](const nlohmann::json& answer) {
    return queue_entry(answer, queues::dead).value("depth", 0) == 3 &&
           consumers_of(answer, queues::images) + consumers_of(answer, queues::pixels) +
                   consumers_of(answer, queues::features) ==
               0;
  });
  REQUIRE(idle["queues"].size() == 4);
  CHECK(idle["queues"][0]["queue"] == queues::images);
  CHECK(idle["queues"][0]["stage"] == "preprocess");
  CHECK(idle["queues"][1]["queue"] == queues::pixels);
  CHECK(idle["queues"][1]["stage"] == "feature");
  CHECK(idle["queues"][2]["queue"] == queues::features);
  CHECK(idle["queues"][2]["stage"] == "classify");
  CHECK(idle["queues"][3]["queue"] == queues::dead);
  const auto& dead = queue_entry(idle, queues::dead);
  CHECK(dead["depth"] == 3);
  CHECK(dead["ready"] == 3);
  CHECK(dead["unacked"] == 0);
  CHECK(dead["consumers"] == 0);
  for (const char* stage : {queues::images, queues::pixels, queues::features}) {
    INFO(stage);
    CHECK(queue_entry(idle, stage)["exists"] == true);
    CHECK(queue_entry(idle, stage)["consumers"] == 0);
  }

  {
    Cluster cluster;
    const auto running = status_when([](const nlohmann::json& answer) {
      return consumers_of(answer, queues::images) >= 1 && consumers_of(answer, queues::pixels) >= 1 &&
             consumers_of(answer, queues::features) >= 1;
    });
    CHECK(consumers_of(running, queues::images) >= 1);
    CHECK(consumers_of(running, queues::pixels) >= 1);
    CHECK(consumers_of(running, queues::features) >= 1);
    CHECK(consumers_of(running, queues::dead) == 0);

    // The table shows the same figures to a person.
    const auto text = status({});
    INFO(text.err);
    CHECK(text.exit_code == 0);
    CHECK_THAT(text.out, Catch::Contains("consumers") && Catch::Contains("imgpipe.features"));
  }
  const auto stopped = status_when([](const nlohmann::json& answer) {
    return consumers_of(answer, queues::images) == 0 && consumers_of(answer, queues::pixels) == 0 &&
           consumers_of(answer, queues::features) == 0;
  });
  CHECK(consumers_of(stopped, queues::images) == 0);
  CHECK(consumers_of(stopped, queues::pixels) == 0);
  CHECK(consumers_of(stopped, queues::features) == 0);
  session.purge(queues::dead);
}

TEST_CASE("imgpipe status --job shows a finished submit with every image done", "[e2e][broker][status]") {
  InputFolder inputs(2);
  TempDir state;
  TempDir out;
  RunResult submitted;
  {
    Cluster cluster;
    submitted = run_tool(worker_binary("imgpipe"),
                         {"submit", "--models", models_dir().string(), "--model", "fashion", "--quiet",
                          "--idle-timeout", "120", "--state-dir", state.path().string(), "-o",
                          (out.path() / "results.jsonl").string(), inputs.dir.path().string()},
                         600, broker_environment());
  }
  INFO(submitted.err);
  REQUIRE(submitted.exit_code == 3);  // the broken inputs fail, each with its line
  // The id is announced even with --quiet: it is what the user needs to ask for the job's status.
  std::smatch match;
  REQUIRE(std::regex_search(submitted.err, match, std::regex("job ([0-9a-f]+): ([0-9]+) images")));
  const std::string job_id = match[1];
  CHECK(std::stoul(match[2].str()) == inputs.total());

  const auto answer = status_json({"--job", job_id, "--state-dir", state.path().string()});
  const auto& job = answer["job"];
  CHECK(job["job"] == job_id);
  CHECK(job["state"] == "finished");
  CHECK(job["model"] == "fashion");
  CHECK(job["total"] == inputs.total());
  CHECK(job["done"] == inputs.total());
  CHECK(job["failed"] == inputs.expected_error.size());
  CHECK(job["elapsed_seconds"].get<double>() > 0);
  CHECK(job["eta_seconds"].is_null());
  CHECK(job["error"].is_null());
  CHECK(job["result_queue"]["name"] == queues::results_for(job_id));
  CHECK(job["result_queue"]["exists"] == false);  // submit deletes it once every result is in

  const auto text = status({"--job", job_id, "--state-dir", state.path().string()});
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("finished, " + std::to_string(inputs.total()) + "/" +
                                       std::to_string(inputs.total()) + " done"));
}

TEST_CASE("imgpipe status --job counts the results waiting in a running job's result queue",
          "[e2e][broker][status]") {
  const std::string job_id = "status-live-" + std::to_string(::getpid());
  TempDir state;
  JobState initial;
  initial.job = job_id;
  initial.model = "fashion";
  initial.total = 10;
  initial.result_queue = queues::results_for(job_id);
  JobStateFile file(state.path(), initial);  // written by this process, which is alive: a running job

  JobChannel channel(BrokerAddress::parse(broker_url()), {}, job_id, {});
  for (int i = 0; i < 4; ++i) channel.publish({channel.result_queue(), {'r'}, {}});
  channel.wait_confirms(std::chrono::seconds(30));

  const auto answer = status_when(
      [](const nlohmann::json& reply) { return reply["job"]["result_queue"].value("depth", 0) == 4; },
      {"--job", job_id, "--state-dir", state.path().string()});
  channel.delete_result_queue();
  const auto& job = answer["job"];
  CHECK(job["state"] == "running");
  CHECK(job["done"] == 0);
  CHECK(job["total"] == 10);
  CHECK(job["finished"].is_null());
  CHECK(job["result_queue"]["exists"] == true);
  CHECK(job["result_queue"]["depth"] == 4);
}

TEST_CASE("imgpipe status fails with exit 1 and says why when the management API is not there",
          "[e2e][broker][status]") {
  const int port = closed_port();
  const auto result = status({}, "http://guest:guest@127.0.0.1:" + std::to_string(port) + "/");
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err,
             Catch::Contains("cannot reach the RabbitMQ management API at http://guest:***@127.0.0.1:" +
                             std::to_string(port)));
  CHECK_THAT(result.err, Catch::Contains("could not connect"));
  CHECK_THAT(result.err, !Catch::Contains("guest:guest"));  // the password stays out of the message
  CHECK(result.out.empty());
}

TEST_CASE("imgpipe status fails with exit 1 for wrong credentials and for a job it has no state of",
          "[e2e][broker][status]") {
  const auto wrong = ManagementAddress::parse(management_url());
  const auto refused = status({}, "http://" + wrong.user + ":not-the-password@" + wrong.host + ":" +
                                      std::to_string(wrong.port) + "/");
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("(401)"));

  TempDir state;
  const auto unknown = status({"--job", "0123456789abcdef", "--state-dir", state.path().string()});
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err, Catch::Contains("no state for job 0123456789abcdef"));
}

TEST_CASE(
    "imgpipe status names a slow feature stage as the bottleneck, with per-stage rates and a running job's "
    "ETA from its recent rate",
    "[e2e][broker][status]") {
  InputFolder inputs(30);  // 309 images: 300 Fashion-MNIST PNGs, photographs and broken files
  TempDir state;
  TempDir out;
  // One feature worker that takes 400 ms a batch (a sleep in its compute thread, like a slow model), and
  // four images a message: feature is the stage that cannot keep up.
  Cluster cluster(false, {}, {{"feature", {"--fault-handler-delay-ms", "400"}}});
  ChildProcess submit(worker_binary("imgpipe"),
                      {"submit", "--models", models_dir().string(), "--model", "fashion", "--quiet",
                       "--batch-size", "4", "--idle-timeout", "300", "--state-dir", state.path().string(),
                       "-o", (out.path() / "results.jsonl").string(), inputs.dir.path().string()},
                      out.path() / "submit.log", broker_environment());
  std::string job_id;
  const auto started = std::chrono::steady_clock::now();
  while (job_id.empty() && std::chrono::steady_clock::now() - started < std::chrono::seconds(60)) {
    const std::string log =
        std::filesystem::exists(out.path() / "submit.log") ? read_text_file(out.path() / "submit.log") : "";
    std::smatch match;
    if (std::regex_search(log, match, std::regex("job ([0-9a-f]+): "))) job_id = match[1];
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE_FALSE(job_id.empty());

  const std::vector<std::string> job_flags = {"--job", job_id, "--state-dir", state.path().string()};
  const auto answer = status_when(
      [](const nlohmann::json& reply) {
        return reply["bottleneck"]["stage"] == "feature" && !reply["job"]["eta_seconds"].is_null() &&
               queue_entry(reply, queues::pixels).value("ack_rate", 0.0) > 0;
      },
      job_flags);
  INFO(answer.dump(2));
  CHECK(answer["bottleneck"]["kind"] == "stage");
  CHECK(answer["bottleneck"]["stage"] == "feature");
  CHECK_THAT(answer["bottleneck"]["text"].get<std::string>(),
             Catch::StartsWith("feature-bound: add feature replicas"));
  CHECK(answer["images_per_message"] == 4);  // the job's own batch size
  const auto& pixels = queue_entry(answer, queues::pixels);
  CHECK(pixels["ready"].get<std::uint64_t>() >= 2);
  // A batch takes at least 400 ms on the one feature worker: it cannot ack more than 2.5 a second.
  CHECK(pixels["ack_rate"].get<double>() < 3.5);
  CHECK(pixels["images_rate"].get<double>() == Approx(pixels["ack_rate"].get<double>() * 4));
  CHECK(queue_entry(answer, queues::features)["ready"].get<std::uint64_t>() < 2);  // classify is starved
  const auto& job = answer["job"];
  CHECK(job["state"] == "running");
  CHECK(job["rate"].get<double>() > 0);
  CHECK(job["rate"].get<double>() < 4 * 3.5);  // the rate of the slow stage, not of the publisher
  CHECK(job["eta_seconds"].get<double>() > 0);

  const auto text = status(job_flags);
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("bottleneck: feature-bound: add feature replicas") &&
                           Catch::Contains("images/s") && Catch::Contains("ETA"));
  CHECK(submit.wait(300) == 3);
}
