// Scenario 5: a batch that takes longer than the heartbeat interval. The worker's IO thread keeps the
// connection serviced while the compute thread works, so the broker never drops it and nothing is
// redelivered: no reconnect, no duplicate, one line per image.
#include <catch2/catch.hpp>

#include "fault_harness.hpp"

using namespace imgpipe::test;
using namespace imgpipe::test::fault;

TEST_CASE("scenario 5: batches three times longer than the heartbeat interval drop no connection",
          "[fault]") {
  InputFolder inputs(10);  // 109 images: four publisher batches of 32
  const int delivery_limit = 5;
  const int heartbeat_seconds = 1;
  // The broker closes a connection after two missed heartbeats; each batch here blocks its stage for
  // three intervals, in every stage.
  const std::string batch_ms = std::to_string(3000 * heartbeat_seconds);
  Tally tally{"5: every batch 3 s on a 1 s heartbeat"};
  for (int run = 0; run < repeat_count(); ++run) {
    StageQueues queues(delivery_limit);
    const auto dead_before = queues.dead_letters();
    Workers workers(worker_flags(delivery_limit, {"--heartbeat", std::to_string(heartbeat_seconds),
                                                  "--fault-handler-delay-ms", batch_ms}));
    workers.start_all();
    Job job(inputs, delivery_limit, {"--batch-size", "32"});
    auto outcome = job.finish();
    check_job(inputs, outcome);
    CHECK(outcome.duplicates == 0);  // nothing was redelivered
    tally.add(outcome);
    workers.sample_rss(true);
    const auto stopped = settle_then_stop(workers, queues);
    for (const auto& role : kStages) {
      const std::string log = workers.logs(role);
      INFO(role << " log:\n" << log);
      CHECK(stopped.at(role) == 0);
      CHECK_THAT(log, Catch::Contains("fault injection is on"));
      CHECK_THAT(log, !Catch::Contains("reconnecting in"));
      // QueueWorker's own count, from its stop line: "stopped after N messages, 0 reconnects".
      CHECK_THAT(log, Catch::Contains(" messages, 0 reconnects"));
      CHECK_THAT(log, !Catch::Contains("stopped after 0 messages"));
    }
    check_quiet_queues(queues, dead_before);
    check_rss(workers, false);
    ++tally.runs;
  }
  tally.print();
}
