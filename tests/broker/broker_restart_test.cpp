// The transport across broker restarts and crashes (scripts/broker restart / kill / start).
#include <catch2/catch.hpp>

#include "broker_fixtures.hpp"

#include <algorithm>
#include <future>
#include <set>

using namespace imgpipe;
using namespace imgpipe::test;
using namespace std::chrono_literals;

namespace {

std::set<std::string> bodies(const std::string& prefix, int count) {
  std::set<std::string> out;
  for (int i = 0; i < count; ++i) out.insert(prefix + std::to_string(i));
  return out;
}

}  // namespace

TEST_CASE("a worker and a job channel keep processing across a broker restart", "[broker][restart]") {
  const std::string queue = unique_name("stage");
  BrokerSession(test_address(), test_options()).declare_stage_queue(queue);
  JobChannel job(test_address(), test_options(), unique_name("job"), {});
  const std::string results = job.result_queue();
  LogCapture log;
  WorkerThread worker(
      worker_options(queue),
      [results](const IncomingMessage& in) {
        return std::vector<OutgoingMessage>{text_message(results, "out:" + text_of(in))};
      },
      log.fn());

  // Results may repeat after a restart (an output confirmed but its input's ack lost): de-duplicate.
  const auto collect = [&](std::set<std::string> missing) {
    while (!missing.empty()) {
      auto result = job.next_result(60s);
      REQUIRE(result);
      missing.erase(text_of(*result));
      job.ack(result->delivery_tag);
    }
  };

  for (const auto& body : bodies("before-", 5)) job.publish(text_message(queue, body));
  job.wait_confirms(10s);
  std::set<std::string> expected;
  for (const auto& body : bodies("before-", 5)) expected.insert("out:" + body);
  collect(expected);

  broker_ctl("restart");

  for (const auto& body : bodies("after-", 5)) job.publish(text_message(queue, body));
  job.wait_confirms(60s);
  expected.clear();
  for (const auto& body : bodies("after-", 5)) expected.insert("out:" + body);
  collect(expected);

  CHECK(job.reconnects() >= 1);
  CHECK(worker.stats().reconnects >= 1);
  worker.stop();
  CHECK(BrokerSession(test_address(), test_options()).message_count(queue) == 0);
  job.delete_result_queue();
  BrokerSession(test_address(), test_options()).delete_queue(queue);
}

TEST_CASE("a job channel republishes what a killed broker never confirmed, and durable messages survive",
          "[broker][restart]") {
  // The job's own result queue (a quorum queue). One declared a moment before a kill -9 may come back without
  // a leader (measured on RabbitMQ 3.10: every request to it then times out), which is not what this spec is
  // about: the kill comes a few seconds after the declare, as it would in a running job.
  LogCapture log;
  JobChannel job(test_address(), test_options(), unique_name("job"), log.fn());
  const std::string queue = job.result_queue();
  for (const auto& body : bodies("durable-", 5)) job.publish(text_message(queue, body));
  job.wait_confirms(10s);
  std::this_thread::sleep_for(5s);

  broker_ctl("kill");
  // The first publish goes into a dead socket; the channel notices, waits for the broker and replays it.
  auto late = std::async(std::launch::async, [&job, &queue] {
    for (const auto& body : bodies("late-", 3)) job.publish(text_message(queue, body));
    job.wait_confirms(60s);
  });
  std::this_thread::sleep_for(1s);
  broker_ctl("start");
  late.get();
  CHECK(job.reconnects() >= 1);

  std::set<std::string> stored;
  while (auto result = job.next_result(2s)) {
    stored.insert(text_of(*result));
    job.ack(result->delivery_tag);
  }
  std::set<std::string> expected = bodies("durable-", 5);
  expected.merge(bodies("late-", 3));
  CHECK(stored == expected);
  job.delete_result_queue();
}

TEST_CASE("a job channel replays unconfirmed publishes on the connection that replaces a lost one",
          "[broker][restart]") {
  LogCapture log;
  JobChannel job(test_address(), test_options(), unique_name("job"), log.fn());
  const std::string queue = job.result_queue();

  // Under a memory alarm the broker stops reading from publishers: these stay unconfirmed.
  broker_ctl("alarm");
  for (const auto& body : bodies("blocked-", 3)) job.publish(text_message(queue, body));
  CHECK_THROWS_WITH(job.wait_confirms(1s), Catch::Matchers::Contains("3 publishes still unconfirmed"));

  broker_ctl("restart");
  job.wait_confirms(60s);
  CHECK(job.reconnects() >= 1);
  const auto lines = log.lines();
  CHECK(std::any_of(lines.begin(), lines.end(), [](const std::string& line) {
    return line.find("republished 3 unconfirmed") != std::string::npos;
  }));

  std::set<std::string> stored;
  while (auto result = job.next_result(2s)) {
    stored.insert(text_of(*result));
    job.ack(result->delivery_tag);
  }
  CHECK(stored == bodies("blocked-", 3));
  job.delete_result_queue();
}
