// A consumer process killed with SIGKILL while it holds deliveries: the broker hands them out again.
#include <catch2/catch.hpp>

#include "broker_fixtures.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

using namespace imgpipe;
using namespace imgpipe::test;
using namespace std::chrono_literals;

namespace {

// Runs in the forked child: consume `queue`, tell the parent through `ready` when a handler holds a
// delivery, then sleep until killed. Never returns.
[[noreturn]] void run_doomed_consumer(const std::string& queue, int ready) {
  std::atomic<bool> stop{false};
  QueueWorker worker(test_address(), worker_options(queue),
                     [ready](const IncomingMessage&) -> std::vector<OutgoingMessage> {
                       const char byte = 'x';
                       [[maybe_unused]] const auto written = ::write(ready, &byte, 1);
                       std::this_thread::sleep_for(60s);
                       return {};
                     },
                     {});
  try {
    worker.run(stop);
  } catch (...) {
  }
  ::_exit(1);
}

}  // namespace

TEST_CASE("deliveries held by a consumer killed with SIGKILL are redelivered and none is lost",
          "[broker][worker][crash]") {
  const std::string queue = unique_name("stage");
  BrokerSession(test_address(), test_options()).declare_stage_queue(queue);
  {
    JobChannel job(test_address(), test_options(), unique_name("job"), {});
    for (int i = 0; i < 3; ++i) job.publish(text_message(queue, "m" + std::to_string(i)));
    job.wait_confirms(10s);
    job.delete_result_queue();
  }  // no connection of ours crosses the fork

  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    run_doomed_consumer(queue, ready[1]);
  }
  ::close(ready[1]);
  pollfd signal_fd{ready[0], POLLIN, 0};
  const bool holding = ::poll(&signal_fd, 1, 15000) == 1;
  // With prefetch 4 the child holds all three: none is ready in the queue.
  const auto ready_while_held = BrokerSession(test_address(), test_options()).message_count(queue);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(ready[0]);
  REQUIRE(holding);
  CHECK(ready_while_held == 0);
  CHECK(WIFSIGNALED(status));

  BrokerSession session(test_address(), test_options());
  std::map<std::string, bool> returned;  // body -> redelivered
  CHECK(eventually(10s, [&] {
    while (auto message = session.get(queue)) returned[text_of(*message)] = message->redelivered;
    return returned.size() == 3;
  }));
  CHECK(returned == std::map<std::string, bool>{{"m0", true}, {"m1", true}, {"m2", true}});
  session.delete_queue(queue);
}
