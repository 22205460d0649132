// Several brokers in --broker: a client connects to a node of the list, and when its node goes away it moves
// to the next one, declares there what it declared before, and carries on. The nodes here are separate
// single-node brokers (the test broker and throwaway ones), not a cluster: what a node held is not on the
// next one, so each spec moves work only when nothing is in flight, or shows only what a fresh node can.
#include <catch2/catch.hpp>

#include "broker_fixtures.hpp"
#include "spare_broker.hpp"

#include <cstdio>
#include <iostream>
#include <mutex>
#include <set>

using namespace imgpipe;
using namespace imgpipe::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Nothing listens on port 1 of the loopback: a connect there is refused at once, as by a stopped node.
constexpr const char* down_node = "127.0.0.1:1";

// One URL with a host list, as a user writes it: amqp://guest:guest@NODE1,NODE2/
std::string host_list(const std::vector<std::string>& nodes) {
  std::string hosts;
  for (const auto& node : nodes) hosts += (hosts.empty() ? "" : ",") + node;
  return "amqp://guest:guest@" + hosts + "/";
}

// Every log line with the moment it was written, to time a failover.
class TimedLog {
 public:
  LogFn fn() {
    return [this](std::string_view level, std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.push_back({Clock::now(), std::string(level) + ": " + std::string(line)});
      if (std::getenv("IMGPIPE_TEST_LOG") != nullptr) std::fprintf(stderr, "%s\n", lines_.back().text.c_str());
    };
  }
  // When the first line containing `text` was written, if one was.
  std::optional<Clock::time_point> when(const std::string& text) const {
    std::lock_guard lock(mutex_);
    for (const auto& line : lines_)
      if (line.text.find(text) != std::string::npos) return line.at;
    return std::nullopt;
  }
  std::string all() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& line : lines_) out += line.text + "\n";
    return out;
  }

 private:
  struct Line {
    Clock::time_point at;
    std::string text;
  };
  mutable std::mutex mutex_;
  std::vector<Line> lines_;
};

// Bodies a handler saw, from the worker's thread.
class Seen {
 public:
  DeliveryHandler handler() {
    return [this](const IncomingMessage& in) {
      std::lock_guard lock(mutex_);
      bodies_.insert(text_of(in));
      return std::vector<OutgoingMessage>{};
    };
  }
  bool has(const std::set<std::string>& wanted) const {
    std::lock_guard lock(mutex_);
    for (const auto& body : wanted)
      if (bodies_.count(body) == 0) return false;
    return true;
  }

 private:
  mutable std::mutex mutex_;
  std::set<std::string> bodies_;
};

std::set<std::string> publish_to(const BrokerList& node, const std::string& queue, const std::string& prefix,
                                 int count) {
  BrokerSession session(node, test_options());
  std::set<std::string> bodies;
  for (int i = 0; i < count; ++i) {
    bodies.insert(prefix + std::to_string(i));
    session.publish(text_message(queue, prefix + std::to_string(i)));
  }
  return bodies;
}

double seconds(Clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

}  // namespace

TEST_CASE("a worker given a broker list whose first node is down consumes from the next one",
          "[broker][failover]") {
  const BrokerAddress live = test_address();
  const std::string queue = unique_name("failover");
  BrokerSession(live, test_options()).declare_stage_queue(queue);
  auto options = worker_options(queue);
  options.connection.first_node = 0;  // the down node first, whatever the random start would pick
  TimedLog log;
  Seen seen;
  WorkerThread worker(BrokerList::parse(host_list({down_node, live.node()})), options, seen.handler(),
                      log.fn());

  const auto sent = publish_to(live, queue, "m", 3);
  REQUIRE(eventually(30s, [&] { return seen.has(sent); }));
  INFO(log.all());
  CHECK(log.when(std::string("trying ") + live.node()));  // after the refused one, at once
  CHECK(log.when("connected to " + live.node()));
  CHECK_FALSE(log.when("reconnecting in"));  // no backoff: the round had a node that answered
  CHECK(worker.stats().node == live.node());
  // The broker shows which node the connection is on.
  CHECK_THAT(broker_ctl_output("connections"), Catch::Contains("imgpipe-broker-tests@" + live.node()));
  worker.stop();
  BrokerSession(live, test_options()).delete_queue(queue);
}

TEST_CASE("a job channel given a broker list whose first node is down publishes and collects through the next",
          "[broker][failover]") {
  const BrokerAddress live = test_address();
  auto options = test_options();
  options.first_node = 0;
  TimedLog log;
  const auto started = Clock::now();
  JobChannel job(BrokerList::parse(host_list({down_node, live.node()})), options, unique_name("job"), log.fn());
  const auto connected = Clock::now();
  INFO(log.all());
  CHECK(job.node() == live.node());
  CHECK(seconds(connected - started) < 2.0);  // the down node costs a refused connect, not a backoff
  job.publish(text_message(job.result_queue(), "to myself"));
  job.wait_confirms(10s);
  const auto result = job.next_result(10s);
  REQUIRE(result);
  CHECK(text_of(*result) == "to myself");
  job.ack(result->delivery_tag);
  job.delete_result_queue();
}

TEST_CASE("a worker whose node stops moves to the next node of its list and keeps consuming",
          "[broker][failover]") {
  SpareBroker first;
  const BrokerAddress second = test_address();
  const std::string queue = unique_name("failover");
  for (const auto& node : {BrokerAddress::parse(first.url()), second}) {
    BrokerSession(node, test_options()).declare_stage_queue(queue);
  }
  auto options = worker_options(queue);
  options.connection.first_node = 0;
  TimedLog log;
  Seen seen;
  WorkerThread worker(BrokerList::parse(host_list({first.node(), second.node()})), options, seen.handler(),
                      log.fn());

  const auto before = publish_to(BrokerAddress::parse(first.url()), queue, "before-", 3);
  REQUIRE(eventually(30s, [&] { return seen.has(before); }));
  CHECK(worker.stats().node == first.node());

  const auto stopping = Clock::now();
  first.ctl("stop");
  const auto stopped = Clock::now();
  // The worker declared the queue on the second node itself; what is published there now is consumed.
  const auto after = publish_to(second, queue, "after-", 3);
  REQUIRE(eventually(60s, [&] { return seen.has(after); }));
  INFO(log.all());
  const auto lost = log.when("lost " + first.node());
  const auto reconnected = log.when("connected to " + second.node());
  REQUIRE(lost);
  REQUIRE(reconnected);
  CHECK(log.when("lost " + first.node() + ": "));
  CHECK(log.when("trying " + second.node()));
  CHECK(worker.stats().node == second.node());
  CHECK(worker.stats().reconnects == 1);
  CHECK(*reconnected - *lost < 5s);
  std::cout << "failover: worker lost " << first.node() << " " << seconds(*lost - stopping)
            << " s after `scripts/broker stop` began (which took " << seconds(stopped - stopping)
            << " s), consuming on " << second.node() << " " << seconds(*reconnected - *lost) << " s later\n";
  worker.stop();
  BrokerSession(second, test_options()).delete_queue(queue);
}

TEST_CASE("a job channel and a worker on a broker list move together to the next node when theirs stops, and "
          "the job gets every result",
          "[broker][failover]") {
  SpareBroker first;
  const BrokerAddress second = test_address();
  const BrokerList nodes = BrokerList::parse(host_list({first.node(), second.node()}));
  const std::string queue = unique_name("failover");
  for (const auto& node : nodes.nodes) BrokerSession(node, test_options()).declare_stage_queue(queue);
  auto publisher_options = test_options();
  publisher_options.first_node = 0;
  TimedLog job_log;
  JobChannel job(nodes, publisher_options, unique_name("job"), job_log.fn());
  const std::string results = job.result_queue();
  auto options = worker_options(queue);
  options.connection.first_node = 0;
  TimedLog worker_log;
  WorkerThread worker(
      nodes, options,
      [results](const IncomingMessage& in) {
        return std::vector<OutgoingMessage>{text_message(results, "out:" + text_of(in))};
      },
      worker_log.fn());

  const auto collect = [&](const std::string& prefix, int count) {
    std::set<std::string> missing;
    for (int i = 0; i < count; ++i) {
      job.publish(text_message(queue, prefix + std::to_string(i)));
      missing.insert("out:" + prefix + std::to_string(i));
    }
    job.wait_confirms(60s);
    while (!missing.empty()) {
      auto result = job.next_result(60s);
      REQUIRE(result);
      missing.erase(text_of(*result));
      job.ack(result->delivery_tag);
    }
  };

  collect("before-", 5);
  CHECK(job.node() == first.node());
  const auto stopping = Clock::now();
  first.ctl("stop");
  // The channel finds its connection gone on its next call, moves to the second node, declares the
  // topology and its result queue there and consumes it; the worker moved by itself.
  collect("after-", 5);
  const auto done = Clock::now();
  INFO("publisher:\n" << job_log.all() << "worker:\n" << worker_log.all());
  CHECK(job.node() == second.node());
  CHECK(job.reconnects() == 1);
  CHECK(job_log.when("lost " + first.node()));
  CHECK(job_log.when("reconnected to " + second.node()));
  CHECK(worker.stats().node == second.node());
  std::cout << "failover: 5 batches published and answered through " << second.node() << " "
            << seconds(done - stopping) << " s after `scripts/broker stop` of " << first.node() << " began\n";
  job.delete_result_queue();
  worker.stop();
  BrokerSession(second, test_options()).delete_queue(queue);
}

TEST_CASE("stage queues declared with a quorum group size of 3 work on a single node, and the size must "
          "agree on every re-declare",
          "[broker][failover]") {
  const std::string queue = unique_name("group");
  auto three = test_options();
  three.quorum_group_size = 3;  // more than this one-node broker has: RabbitMQ 3.10 puts one replica per node
  BrokerSession(test_address(), three).declare_stage_queue(queue);
  {
    BrokerSession session(test_address(), three);
    session.declare_stage_queue(queue);  // the same arguments again: accepted
    session.publish(text_message(queue, "replicated"));
    const auto back = session.get(queue);
    REQUIRE(back);
    CHECK(text_of(*back) == "replicated");
  }
  // Without the argument (or with another size) the broker refuses the re-declare (406): every worker and
  // publisher must give the same --quorum-group-size.
  CHECK_THROWS_AS(BrokerSession(test_address(), test_options()).declare_stage_queue(queue), BrokerRefused);
  BrokerSession(test_address(), test_options()).delete_queue(queue);
}
