// QueueWorker on private stage queues: acks after confirmed outputs, requeue on failure, poison, heartbeats.
#include <catch2/catch.hpp>

#include "broker_fixtures.hpp"

#include <set>

using namespace imgpipe;
using namespace imgpipe::test;
using namespace std::chrono_literals;

namespace {

// Forwards each input to `results` with its body prefixed, and records whether it was a redelivery.
DeliveryHandler forward_to(const std::string& results) {
  return [results](const IncomingMessage& in) {
    Headers headers = in.headers;
    headers["x-redelivered"] = in.redelivered ? "true" : "false";
    return std::vector<OutgoingMessage>{text_message(results, "out:" + text_of(in), headers)};
  };
}

}  // namespace

TEST_CASE("a worker turns every input into a confirmed output and acks the input", "[broker][worker]") {
  const std::string queue = unique_name("stage");
  BrokerSession session(test_address(), test_options());
  session.declare_stage_queue(queue);
  JobChannel job(test_address(), test_options(), unique_name("job"), {});
  constexpr int count = 40;
  for (int i = 0; i < count; ++i)
    job.publish(text_message(queue, std::to_string(i), {{"x-seq", std::to_string(i)}}));
  job.wait_confirms(10s);

  LogCapture log;
  WorkerThread worker(worker_options(queue), forward_to(job.result_queue()), log.fn());
  std::set<std::string> seen;
  while (seen.size() < count) {
    auto result = job.next_result(10s);
    REQUIRE(result);
    CHECK(text_of(*result) == "out:" + result->headers.at("x-seq"));
    seen.insert(text_of(*result));
    job.ack(result->delivery_tag);
  }
  worker.stop();
  CHECK(worker.stats().handled == count);
  CHECK(worker.stats().published == count);
  CHECK(worker.stats().reconnects == 0);
  // The worker's channel is closed: an unacked input would be ready again.
  CHECK(session.message_count(queue) == 0);
  CHECK(log.count("warn") == 0);
  job.delete_result_queue();
  session.delete_queue(queue);
}

TEST_CASE("an input whose handler throws is not acked but redelivered", "[broker][worker]") {
  const std::string queue = unique_name("stage");
  BrokerSession session(test_address(), test_options());
  session.declare_stage_queue(queue);
  JobChannel job(test_address(), test_options(), unique_name("job"), {});
  job.publish(text_message(queue, "flaky"));
  job.wait_confirms(10s);

  std::atomic<int> calls{0};
  const auto forward = forward_to(job.result_queue());
  LogCapture log;
  WorkerThread worker(
      worker_options(queue),
      [&](const IncomingMessage& in) {
        if (calls++ == 0) throw std::runtime_error("simulated stage bug");
        return forward(in);
      },
      log.fn());
  auto result = job.next_result(10s);
  REQUIRE(result);
  CHECK(text_of(*result) == "out:flaky");
  CHECK(result->headers.at("x-redelivered") == "true");
  job.ack(result->delivery_tag);
  worker.stop();
  CHECK(calls == 2);
  CHECK(worker.stats().handled == 1);
  CHECK(log.count("error") == 1);
  job.delete_result_queue();
  session.delete_queue(queue);
}

TEST_CASE("a message whose handler always throws ends in imgpipe.dead after the delivery limit",
          "[broker][worker]") {
  auto options = test_options();
  options.delivery_limit = 2;
  const std::string queue = unique_name("poison");
  BrokerSession session(test_address(), options);
  session.declare_stage_queue(queue);
  const std::string marker = unique_name("marker");
  {
    JobChannel job(test_address(), test_options(), unique_name("job"), {});
    job.publish(text_message(queue, "poison", {{"x-marker", marker}}));
    job.wait_confirms(10s);
    job.delete_result_queue();
  }

  std::atomic<int> calls{0};
  auto worker_opts = worker_options(queue);
  worker_opts.connection = options;
  LogCapture log;
  WorkerThread worker(
      worker_opts,
      [&](const IncomingMessage&) -> std::vector<OutgoingMessage> {
        ++calls;
        throw std::runtime_error("always fails");
      },
      log.fn());

  // imgpipe.dead is shared: skip other specs' dead letters.
  std::optional<IncomingMessage> dead;
  const bool arrived = eventually(15s, [&] {
    while (auto message = session.get(queues::dead)) {
      if (message->headers.count("x-marker") != 0 && message->headers.at("x-marker") == marker) {
        dead = std::move(message);
        return true;
      }
    }
    return false;
  });
  worker.stop();
  REQUIRE(arrived);
  CHECK(text_of(*dead) == "poison");
  CHECK(dead->headers.at("x-first-death-queue") == queue);
  CHECK(dead->headers.at("x-first-death-reason") == "delivery_limit");
  // The first delivery plus `delivery_limit` redeliveries.
  CHECK(calls == options.delivery_limit + 1);
  CHECK(session.message_count(queue) == 0);
  CHECK(worker.stats().handled == 0);
  session.delete_queue(queue);
}

TEST_CASE("a handler running longer than three heartbeats keeps the connection and its delivery",
          "[broker][worker]") {
  auto options = test_options();
  options.heartbeat = 1s;
  const std::string queue = unique_name("stage");
  // A session is serviced only inside its calls: open one per step, not one across the slow handler.
  BrokerSession(test_address(), options).declare_stage_queue(queue);
  JobChannel job(test_address(), test_options(), unique_name("job"), {});
  job.publish(text_message(queue, "slow"));
  job.publish(text_message(queue, "fast"));
  job.wait_confirms(10s);

  auto worker_opts = worker_options(queue);
  worker_opts.connection = options;
  std::atomic<int> calls{0};
  const auto forward = forward_to(job.result_queue());
  LogCapture log;
  WorkerThread worker(
      worker_opts,
      [&](const IncomingMessage& in) {
        ++calls;
        if (text_of(in) == "slow") std::this_thread::sleep_for(4s);
        return forward(in);
      },
      log.fn());
  std::set<std::string> seen;
  while (seen.size() < 2) {
    auto result = job.next_result(15s);
    REQUIRE(result);
    CHECK(result->headers.at("x-redelivered") == "false");
    seen.insert(text_of(*result));
    job.ack(result->delivery_tag);
  }
  worker.stop();
  CHECK(seen == std::set<std::string>{"out:slow", "out:fast"});
  CHECK(calls == 2);
  CHECK(worker.stats().reconnects == 0);
  CHECK(log.count("warn") == 0);
  job.delete_result_queue();
  BrokerSession(test_address(), options).delete_queue(queue);
}

TEST_CASE("stopping a worker finishes, publishes and acks the delivery in flight", "[broker][worker]") {
  const std::string queue = unique_name("stage");
  BrokerSession session(test_address(), test_options());
  session.declare_stage_queue(queue);
  JobChannel job(test_address(), test_options(), unique_name("job"), {});
  for (int i = 0; i < 3; ++i) job.publish(text_message(queue, "m" + std::to_string(i)));
  job.wait_confirms(10s);

  std::atomic<bool> started{false};
  const auto forward = forward_to(job.result_queue());
  auto worker = std::make_unique<WorkerThread>(
      worker_options(queue),
      [&](const IncomingMessage& in) {
        started = true;
        std::this_thread::sleep_for(1s);
        return forward(in);
      },
      LogFn{});
  REQUIRE(eventually(10s, [&] { return started.load(); }));
  worker->stop();
  CHECK(worker->stats().handled == 1);
  auto result = job.next_result(10s);
  REQUIRE(result);
  CHECK(text_of(*result) == "out:m0");
  job.ack(result->delivery_tag);
  // The two deliveries that never started went back to the queue.
  CHECK(eventually(5s, [&] { return session.message_count(queue) == 2; }));
  job.delete_result_queue();
  session.delete_queue(queue);
}
