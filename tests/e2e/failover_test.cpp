// The whole pipeline given several brokers: the workers and `imgpipe submit` take the first node that
// answers, and when their node goes away mid-job they go round the list until a node answers, declare
// everything again there, and the job ends with one line per image. The nodes are separate single-node
// brokers, not a cluster (messages on one are not on another): the node listed first is down for the whole
// job, and the one the pipeline runs on is restarted mid-job, keeping its durable queues and messages.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "e2e_support.hpp"
#include "spare_broker.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
using namespace std::chrono_literals;

namespace {
bool log_has(const std::filesystem::path& log, const std::string& text) {
  return std::filesystem::exists(log) && read_text_file(log).find(text) != std::string::npos;
}

template <typename Condition>
bool eventually(std::chrono::seconds limit, Condition condition) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(200ms);
  }
  return true;
}
}  // namespace

TEST_CASE("a pipeline given a broker list skips the node that is down, and a restart of its node mid-job "
          "costs no image",
          "[e2e][broker][failover]") {
  SpareBroker node;
  // Nothing listens on port 1: the first node of the list is down, as a stopped cluster node would be.
  const std::string brokers = "amqp://guest:guest@127.0.0.1:1," + node.node() + "/";
  const Environment environment{{"IMGPIPE_BROKER", brokers}};
  InputFolder inputs(10);
  Cluster cluster(false, {}, {}, environment);
  const std::vector<std::string> roles = {"preprocess", "feature", "classify"};
  REQUIRE(eventually(120s, [&] {
    for (const auto& role : roles)
      if (!log_has(cluster.log_of(role), "connected to " + node.node())) return false;
    return true;
  }));
  // Every connection says which node it is on.
  const std::string connections = node.ctl("connections");
  for (const auto& role : roles) CHECK_THAT(connections, Catch::Contains("imgpipe-" + role + "@" + node.node()));

  TempDir out;
  const auto results = out.path() / "results.jsonl";
  const auto publisher_log = out.path() / "submit.log";
  // Small batches published slowly, so the restart lands while the job is being published.
  ChildProcess submit(worker_binary("imgpipe"),
                      {"submit", "--models", models_dir().string(), "--model", "fashion", "--batch-size", "4",
                       "--test-publish-delay-ms", "150", "--idle-timeout", "300", "-o", results.string(),
                       inputs.dir.path().string()},
                      publisher_log, environment);
  std::this_thread::sleep_for(2s);
  REQUIRE(submit.running());
  node.ctl("restart");
  const int status = submit.wait(600);
  INFO("submit log:\n" << read_text_file(publisher_log));
  CHECK(status == 3);  // the broken files' lines; every other image classified
  const auto lines = lines_by_image(read_text_file(results));
  CHECK(lines.size() == inputs.total());
  for (const auto& [path, reason] : inputs.expected_error) {
    INFO(path);
    REQUIRE(lines.count(path) == 1);
    CHECK_THAT(lines.at(path)["error"].get<std::string>(), Catch::Contains(reason));
  }
  for (const auto& [path, label] : inputs.true_class) {
    INFO(path);
    REQUIRE(lines.count(path) == 1);
    CHECK(lines.at(path)["error"].is_null());
  }
  CHECK(log_has(publisher_log, "lost " + node.node()));
  for (const auto& role : roles) {
    INFO(role << " log:\n" << read_text_file(cluster.log_of(role)));
    CHECK(cluster.worker(role).running());
    CHECK(log_has(cluster.log_of(role), "lost " + node.node()));
    CHECK(log_has(cluster.log_of(role), "trying 127.0.0.1:1"));
  }
}
