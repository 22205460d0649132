// Scenarios 1 and 2: workers die with kill -9, from outside at random moments, or by their own hand at the
// worst moment (outputs confirmed downstream, input not yet acked). Every image still gets exactly one line.
#include <catch2/catch.hpp>

#include <iostream>

#include "fault_harness.hpp"

using namespace imgpipe::test;
using namespace imgpipe::test::fault;

namespace {
using Clock = std::chrono::steady_clock;

// The seed of the kill schedule: IMGPIPE_FAULT_SEED to replay one, otherwise a fresh one (printed).
unsigned kill_seed() {
  const int fixed = env_int("IMGPIPE_FAULT_SEED", 0);
  return fixed != 0 ? static_cast<unsigned>(fixed) : std::random_device{}();
}
}  // namespace

TEST_CASE(
    "scenario 1: workers of every stage killed with kill -9 at random moments and restarted lose nothing",
    "[fault]") {
  const int kills_per_stage = env_int("IMGPIPE_FAULT_KILLS_PER_STAGE", 20);
  // A job of thousands of images: 300 Fashion-MNIST images per class, plus photos and broken files.
  InputFolder inputs(static_cast<std::size_t>(env_int("IMGPIPE_FAULT_IMAGES_PER_CLASS", 300)));
  // No message can be returned by more kills than there are, so with this limit none is dead-lettered by
  // the kills themselves (the default of 5 could be reached by a message caught in five kills in a row).
  const int delivery_limit = std::min(1000, kills_per_stage + 10);
  Tally tally{"1: kill -9 workers of each stage at random moments"};
  for (int run = 0; run < repeat_count(); ++run) {
    const unsigned seed = kill_seed();
    std::mt19937 random(seed);
    std::cout << "fault 1 run " << run + 1 << ": kill schedule seed " << seed << " (IMGPIPE_FAULT_SEED)\n";
    StageQueues queues(delivery_limit);
    const auto dead_before = queues.dead_letters();
    // Small batches and prefetch keep many messages in flight at every stage, so each kill catches some.
    Workers workers(worker_flags(delivery_limit, {"--prefetch", "2", "--batch-size", "8"}));
    workers.start_all();
    std::map<std::string, int> kills;
    const auto quota_left = [&] {
      return std::any_of(kStages.begin(), kStages.end(),
                         [&](const std::string& stage) { return kills[stage] < kills_per_stage; });
    };
    std::uniform_int_distribution<int> gap_ms(100, 1200);
    // Jobs follow each other until every stage had its kills; kills only land while a job runs.
    while (quota_left()) {
      Job job(inputs, delivery_limit, {"--batch-size", "8"});
      auto next_kill = Clock::now() + std::chrono::milliseconds(gap_ms(random));
      while (job.running()) {
        if (Clock::now() >= next_kill && quota_left()) {
          std::vector<std::string> candidates;
          for (const auto& stage : kStages) {
            if (kills[stage] < kills_per_stage && workers.consuming(stage)) candidates.push_back(stage);
          }
          if (!candidates.empty()) {
            const auto& victim =
                candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(random)];
            workers.kill_hard(victim);
            workers.start(victim);
            ++kills[victim];
            next_kill = Clock::now() + std::chrono::milliseconds(gap_ms(random));
          }
        }
        workers.sample_rss_if_due();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      const auto outcome = job.finish();
      check_job(inputs, outcome);
      tally.add(outcome);
    }
    const auto stopped = settle_then_stop(workers, queues);
    for (const auto& [role, status] : stopped) {
      INFO(role << " log:\n" << workers.logs(role));
      CHECK(status == 0);
    }
    check_quiet_queues(queues, dead_before);
    check_rss(workers, false);
    for (const auto& stage : kStages) {
      CHECK(kills[stage] == kills_per_stage);
      tally.kills[stage] += kills[stage];
    }
    ++tally.runs;
  }
  tally.note = "delivery limit " + std::to_string(delivery_limit) + ", worker batch 8, prefetch 2";
  tally.print();
}

TEST_CASE(
    "scenario 2: a worker killed after its outputs were confirmed but before its ack causes duplicates, "
    "de-duplicated",
    "[fault]") {
  InputFolder inputs(static_cast<std::size_t>(env_int("IMGPIPE_FAULT_CRASH_IMAGES_PER_CLASS", 60)));
  const int delivery_limit = 50;
  // Each stage kills itself after its Nth confirmed delivery, again in every restarted incarnation. N is
  // above the prefetch, so a redelivered input is acked by the next incarnation before it crashes again.
  const std::map<std::string, std::vector<std::string>> crash_at = {
      {"preprocess", {"--fault-crash-before-ack", "17"}},
      {"feature", {"--fault-crash-before-ack", "23"}},
      {"classify", {"--fault-crash-before-ack", "29"}}};
  Tally tally{"2: kill -9 between outputs confirmed and input acked"};
  for (int run = 0; run < repeat_count(); ++run) {
    StageQueues queues(delivery_limit);
    const auto dead_before = queues.dead_letters();
    Workers workers(worker_flags(delivery_limit, {"--prefetch", "2"}), crash_at);
    workers.start_all();
    Job job(inputs, delivery_limit, {"--batch-size", "4"});
    int crashes = 0;
    while (job.running()) {
      crashes += workers.restart_dead();
      workers.sample_rss_if_due();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const auto outcome = job.finish();
    check_job(inputs, outcome);
    tally.add(outcome);
    for (const auto& stage : kStages) {
      const std::string log = workers.logs(stage);
      INFO(stage << " log:\n" << log);
      // Every stage crashed at least once at that exact point, by the hook and not by anything else.
      CHECK(workers.restarts(stage) > 0);
      CHECK_THAT(log, Catch::Contains("fault injection: killing this process after the outputs of delivery"));
      tally.kills[stage] += workers.restarts(stage);
    }
    // Each crash leaves outputs of an input that the broker then delivers again: at least one image of each
    // such input reaches the publisher twice, and the publisher keeps one line.
    CHECK(outcome.duplicates >= static_cast<std::size_t>(crashes));
    CHECK(outcome.duplicates > 0);
    // The hooks would keep crashing the workers: stop them the hard way once the queues are quiet.
    const auto quiet = wait_until(
        [&] {
          workers.restart_dead();
          const auto ready = queues.ready();
          return std::all_of(ready.begin(), ready.end(), [](const auto& q) { return q.second == 0; });
        },
        std::chrono::seconds(120));
    CHECK(quiet);
    settle_then_stop(workers, queues);
    check_quiet_queues(queues, dead_before);
    check_rss(workers, false);
    ++tally.runs;
  }
  tally.note = "crash before ack of delivery 17/23/29 in preprocess/feature/classify, every incarnation";
  tally.print();
}

TEST_CASE("the fault-injection flags are hidden from a worker's help and refused out of range", "[fault]") {
  const auto help = run_tool(worker_binary("imgpipe-feature"), {"--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out, Catch::Contains("--delivery-limit") && !Catch::Contains("--fault") &&
                           !Catch::Contains("IMGPIPE_FAULT"));
  CHECK(run_tool(worker_binary("imgpipe-feature"), {"--fault-handler-delay-ms", "-1"}).exit_code == 2);
}
