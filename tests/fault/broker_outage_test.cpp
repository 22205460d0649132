// Scenarios 4 and 9: the broker restarts (gracefully or after kill -9) in the middle of a job, or is not
// there at all when the workers start. Workers and publisher reconnect, re-declare, and the job completes.
//
// A quorum queue declared about a second before a kill -9 may find no leader after the restart (its Raft
// log was not on disk yet), and then every declare of it times out. StageQueues declares the stage queues
// when the scenario starts, long before the broker goes down; a job's result queue (quorum too) is declared
// when the job starts, seconds before the fault.
#include <catch2/catch.hpp>

#include <cmath>
#include <iostream>
#include <regex>
#include <sstream>

#include "imgpipe/transport/amqp/broker.hpp"
#include "imgpipe/transport/amqp/queue_worker.hpp"

#include "fault_harness.hpp"

using namespace imgpipe::test;
using namespace imgpipe::test::fault;

namespace {
using Clock = std::chrono::steady_clock;

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size()))
    ++count;
  return count;
}

// Kills or restarts the broker once the job is a quarter done, then lets the job finish.
void broker_fault_mid_job(const std::string& scenario, const std::vector<std::string>& broker_verbs) {
  InputFolder inputs(static_cast<std::size_t>(env_int("IMGPIPE_FAULT_OUTAGE_IMAGES_PER_CLASS", 100)));
  const int delivery_limit = 5;  // the default: a broker restart returns each held message once
  Tally tally{scenario};
  for (int run = 0; run < repeat_count(); ++run) {
    StageQueues queues(delivery_limit);
    const auto dead_before = queues.dead_letters();
    // Every stage slowed down (40 ms a message of 8 images), so each one has work when the broker goes.
    Workers workers(worker_flags(delivery_limit, {"--prefetch", "2", "--fault-handler-delay-ms", "40"}));
    workers.start_all();
    REQUIRE(wait_until(
        [&] {
          return std::all_of(kStages.begin(), kStages.end(),
                             [&](const auto& role) { return workers.consuming(role); });
        },
        std::chrono::seconds(120)));
    Job job(inputs, delivery_limit, {"--batch-size", "8"});
    REQUIRE(wait_until([&] { return job.done() >= inputs.total() / 4 || !job.running(); },
                       std::chrono::seconds(300)));
    REQUIRE(job.running());  // the fault lands mid-job
    workers.sample_rss(true);
    const BrokerBack broker_back;
    for (const auto& verb : broker_verbs) broker_ctl(verb);
    const auto outcome = job.finish();
    check_job(inputs, outcome);
    tally.add(outcome);
    for (const auto& role : kStages) {
      const std::string log = workers.logs(role);
      INFO(role << " log:\n" << log);
      CHECK(workers.process(role).running());  // survived: reconnected instead of dying
      CHECK_THAT(log, Catch::Contains("reconnecting in"));
    }
    // A stage that had no work left may still be waiting out its backoff (30 s at most) when the job ends;
    // every worker connects and consumes again.
    const auto reconnected = [&](const std::string& role) {
      return count_of(workers.logs(role), "consuming imgpipe.") >= 2;
    };
    wait_until([&] { return std::all_of(kStages.begin(), kStages.end(), reconnected); },
               std::chrono::seconds(90));
    workers.sample_rss(false);
    const auto stopped = settle_then_stop(workers, queues);
    for (const auto& [role, status] : stopped) {
      const std::string log = workers.logs(role);
      INFO(role << " log:\n" << log);
      CHECK(status == 0);
      CHECK(reconnected(role));
    }
    check_quiet_queues(queues, dead_before);
    check_rss(workers, true);
    ++tally.runs;
  }
  tally.print();
}
}  // namespace

TEST_CASE("scenario 4a: a graceful broker restart mid-job loses nothing", "[fault][broker-restart]") {
  broker_fault_mid_job("4a: graceful broker restart mid-job", {"restart"});
}

TEST_CASE("scenario 4b: a broker killed with kill -9 mid-job and started again loses nothing",
          "[fault][broker-restart]") {
  broker_fault_mid_job("4b: broker kill -9 mid-job, then start", {"kill", "start"});
}

namespace {
// The most connection attempts a worker can make in `elapsed` with QueueWorker's backoff (250 ms doubling
// to the 30 s cap, each delay at least half its step): anything above it is a retry loop without backoff.
std::size_t max_attempts(std::chrono::duration<double> elapsed) {
  double step = 0.25;
  double slept = 0.0;
  std::size_t attempts = 1;
  while (slept + step / 2 <= elapsed.count()) {
    slept += step / 2;
    ++attempts;
    step = std::min(step * 2, 30.0);
  }
  return attempts;
}

std::vector<long> retry_delays_ms(const std::string& log) {
  static const std::regex delay("reconnecting in ([0-9]+) ms");
  std::vector<long> delays;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), delay); it != std::sregex_iterator(); ++it)
    delays.push_back(std::stol((*it)[1].str()));
  return delays;
}
}  // namespace

TEST_CASE("scenario 9: workers started before the broker retry with capped backoff, then run the job",
          "[fault][broker-outage]") {
  // CI default 20 s; IMGPIPE_FAULT_OUTAGE_SECONDS=60 for the full minute.
  const int outage_seconds = env_int("IMGPIPE_FAULT_OUTAGE_SECONDS", 20);
  InputFolder inputs(30);
  Tally tally{"9: workers started before the broker, broker away " + std::to_string(outage_seconds) + " s"};
  for (int run = 0; run < repeat_count(); ++run) {
    const BrokerBack broker_back;
    broker_ctl("stop");  // the node and its data are gone: the workers find nothing at all
    const auto started = Clock::now();
    Workers workers(worker_flags(5));
    workers.start_all();
    // Each worker reports its first failed attempt before the outage is measured.
    REQUIRE(wait_until(
        [&] {
          return std::all_of(kStages.begin(), kStages.end(), [&](const auto& role) {
            return workers.logs(role).find("reconnecting in") != std::string::npos;
          });
        },
        std::chrono::seconds(60)));
    workers.sample_rss(false);
    std::map<std::string, double> cpu_before;
    for (const auto& role : kStages)
      cpu_before[role] = cpu_seconds(workers.process(role).pid()).value_or(0.0);
    const auto outage_start = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(outage_seconds));
    const std::chrono::duration<double> outage = Clock::now() - outage_start;
    std::map<std::string, double> cpu_during;
    for (const auto& role : kStages) {
      REQUIRE(workers.process(role).running());
      cpu_during[role] = cpu_seconds(workers.process(role).pid()).value_or(0.0) - cpu_before[role];
    }
    workers.sample_rss(false);
    broker_ctl("start");
    REQUIRE(wait_until(
        [&] {
          return std::all_of(kStages.begin(), kStages.end(),
                             [&](const auto& role) { return workers.consuming(role); });
        },
        std::chrono::seconds(120)));
    const std::chrono::duration<double> until_connected = Clock::now() - started;
    // The workers declared the topology themselves; StageQueues only measures it and removes it at the end.
    StageQueues queues(5, StageQueues::Declare::keep_existing);
    const auto dead_before = queues.dead_letters();

    Job job(inputs, 5);
    const auto outcome = job.finish();
    check_job(inputs, outcome);
    tally.add(outcome);
    workers.sample_rss(true);

    std::ostringstream figures;
    for (const auto& role : kStages) {
      const std::string log = workers.logs(role);
      const auto delays = retry_delays_ms(log);
      INFO(role << " log:\n" << log);
      // Clear lines: which broker, what went wrong, when the next attempt comes.
      CHECK_THAT(log, Catch::Contains(imgpipe::BrokerAddress::parse(broker_url()).host));
      REQUIRE(!delays.empty());
      CHECK(delays.size() <= max_attempts(until_connected));
      CHECK(*std::max_element(delays.begin(), delays.end()) <= 30000);  // the cap
      if (outage_seconds >= 10) CHECK(delays.back() > delays.front());  // it backs off
      // Waiting is not spinning: a retry loop without a pause would burn a whole core for the outage.
      CHECK(cpu_during[role] <= 0.05 * outage.count() + 0.5);
      figures << role << " " << delays.size() << " attempts, max delay "
              << *std::max_element(delays.begin(), delays.end()) << " ms, CPU " << cpu_during[role]
              << " s in " << outage.count() << " s; ";
    }
    std::cout << "fault 9 run " << run + 1 << ": " << figures.str() << '\n';
    tally.note = figures.str();
    const auto stopped = settle_then_stop(workers, queues);
    for (const auto& [role, status] : stopped) CHECK(status == 0);
    check_quiet_queues(queues, dead_before);
    check_rss(workers, false);  // one short job: only the bound; growth is scenario 4's and the soak's
    ++tally.runs;
  }
  tally.print();
}
