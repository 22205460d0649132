// The soak: a continuous stream of jobs for IMGPIPE_SOAK_MINUTES (default 30) with a worker killed with
// kill -9 every IMGPIPE_SOAK_KILL_SECONDS (default 15). Hidden from ctest and CI (the "." tag); run it with
// tests/fault/soak. It prints throughput per minute, worker RSS at the start and the end, and the totals.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "fault_harness.hpp"

using namespace imgpipe::test;
using namespace imgpipe::test::fault;

TEST_CASE("soak: a stream of jobs with periodic worker kills keeps one line per image", "[.soak]") {
  using Clock = std::chrono::steady_clock;
  const auto duration = std::chrono::minutes(env_int("IMGPIPE_SOAK_MINUTES", 30));
  const auto kill_every = std::chrono::seconds(env_int("IMGPIPE_SOAK_KILL_SECONDS", 15));
  // IMGPIPE_SOAK_KILL_ROLES, e.g. "preprocess,classify", leaves the others running the whole soak, so their
  // RSS at the start and the end compare one process.
  std::vector<std::string> victims;
  {
    const char* roles = std::getenv("IMGPIPE_SOAK_KILL_ROLES");
    std::istringstream list(roles != nullptr && *roles != '\0' ? roles : "preprocess,feature,classify");
    for (std::string role; std::getline(list, role, ',');) {
      REQUIRE(std::find(kStages.begin(), kStages.end(), role) != kStages.end());
      victims.push_back(role);
    }
  }
  InputFolder inputs(static_cast<std::size_t>(env_int("IMGPIPE_SOAK_IMAGES_PER_CLASS", 100)));
  // Far above what any message can meet: kills are spread over minutes and every incarnation does work.
  const int delivery_limit = 1000;
  std::mt19937 random(std::random_device{}());

  StageQueues queues(delivery_limit);
  const auto dead_before = queues.dead_letters();
  Workers workers(worker_flags(delivery_limit));
  workers.start_all();
  Tally tally{"soak: " + std::to_string(duration.count()) + " min of jobs, a worker killed every " +
              std::to_string(kill_every.count()) + " s"};
  tally.runs = 1;
  std::map<std::string, std::uint64_t> first_rss;

  const auto start = Clock::now();
  auto next_kill = start + kill_every;
  auto next_sample = start;
  std::size_t minute = 0, minute_images = 0, minute_jobs = 0, minute_duplicates = 0;
  const auto report_minute = [&](double seconds) {
    std::cout << "SOAK minute " << minute + 1 << ": " << minute_jobs << " jobs, " << minute_images
              << " images, " << std::fixed << std::setprecision(1)
              << static_cast<double>(minute_images) / seconds << " img/s, " << minute_duplicates
              << " duplicates" << (seconds < 60.0 ? " (a part minute)" : "") << std::endl;
    minute_images = minute_jobs = minute_duplicates = 0;
    ++minute;
  };
  while (Clock::now() - start < duration) {
    Job job(inputs, delivery_limit, {"--batch-size", "16"});
    while (job.running()) {
      const auto now = Clock::now();
      if (now >= next_kill) {
        const auto& victim =
            victims[std::uniform_int_distribution<std::size_t>(0, victims.size() - 1)(random)];
        workers.kill_hard(victim);
        workers.start(victim);
        ++tally.kills[victim];
        next_kill = now + kill_every;
      }
      if (now >= next_sample) {
        workers.sample_rss(tally.jobs > 0);
        next_sample = now + std::chrono::seconds(5);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const auto outcome = job.finish();
    check_job(inputs, outcome);
    tally.add(outcome);
    minute_images += outcome.results;
    minute_duplicates += outcome.duplicates;
    ++minute_jobs;
    while (Clock::now() - start >= std::chrono::minutes(minute + 1)) report_minute(60.0);
  }
  if (minute_jobs > 0) {
    report_minute(std::chrono::duration<double>(Clock::now() - start - std::chrono::minutes(minute)).count());
  }
  workers.sample_rss(true);
  const auto stopped = settle_then_stop(workers, queues);
  for (const auto& [role, status] : stopped) CHECK(status == 0);
  check_quiet_queues(queues, dead_before);
  for (const auto& role : kStages) {
    const auto& rss = workers.rss(role);
    std::cout << "SOAK RSS " << role << ": start " << rss.first_kib / 1024 << " MiB, end "
              << rss.last_kib / 1024 << " MiB (the last incarnation: " << rss.warm_kib / 1024
              << " MiB when warm), peak " << rss.peak_kib / 1024 << " MiB, restarts "
              << workers.restarts(role) << std::endl;
  }
  check_rss(workers, false);
  tally.print();
}
