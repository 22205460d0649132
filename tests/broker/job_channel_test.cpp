// JobChannel and BrokerSession against the real test broker: confirms, consumption, errors.
#include <catch2/catch.hpp>

#include "broker_fixtures.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

TEST_CASE("a published message comes back with body and headers intact, and an ack removes it",
          "[broker][job]") {
  const auto options = test_options();
  const std::string job = unique_name("job");
  std::vector<std::uint8_t> big(1'000'000);  // several AMQP frames
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7 + 3);
  {
    JobChannel channel(test_address(), options, job, {});
    channel.publish(
        text_message(channel.result_queue(), "first", {{"x-imgpipe-job", job}, {"x-batch", "1"}}));
    channel.publish({channel.result_queue(), big, {{"x-batch", "2"}}});
    channel.wait_confirms(10s);

    auto first = channel.next_result(10s);
    REQUIRE(first);
    CHECK(text_of(*first) == "first");
    CHECK(first->headers == Headers{{"x-imgpipe-job", job}, {"x-batch", "1"}});
    CHECK_FALSE(first->redelivered);
    auto second = channel.next_result(10s);
    REQUIRE(second);
    CHECK(second->body == big);
    CHECK(second->headers.at("x-batch") == "2");
    channel.ack(first->delivery_tag);
    channel.ack(second->delivery_tag);
    CHECK_FALSE(channel.next_result(200ms));
  }
  // Closing the channel would have requeued anything unacked.
  BrokerSession session(test_address(), options);
  CHECK(session.message_count(queues::results_for(job)) == 0);
  session.delete_queue(queues::results_for(job));
}

TEST_CASE("an unacked result is redelivered to the next channel of the same job", "[broker][job]") {
  const std::string job = unique_name("job");
  {
    JobChannel channel(test_address(), test_options(), job, {});
    channel.publish(text_message(channel.result_queue(), "kept"));
    channel.wait_confirms(10s);
    REQUIRE(channel.next_result(10s));  // never acked
  }
  JobChannel again(test_address(), test_options(), job, {});
  auto result = again.next_result(10s);
  REQUIRE(result);
  CHECK(text_of(*result) == "kept");
  CHECK(result->redelivered);
  again.ack(result->delivery_tag);
  again.delete_result_queue();
  BrokerSession session(test_address(), test_options());
  CHECK_THROWS_AS(session.message_count(queues::results_for(job)), BrokerRefused);
}

TEST_CASE("messages published to a stage queue are persistent and readable with a session", "[broker][job]") {
  const auto options = test_options();
  const std::string queue = unique_name("stage");
  BrokerSession session(test_address(), options);
  session.declare_stage_queue(queue);
  JobChannel channel(test_address(), options, unique_name("job"), {});
  for (int i = 0; i < 10; ++i) channel.publish(text_message(queue, "m" + std::to_string(i)), 4);
  channel.wait_confirms(10s);
  CHECK(session.message_count(queue) == 10);
  auto first = session.get(queue);
  REQUIRE(first);
  CHECK(text_of(*first) == "m0");
  session.purge(queue);
  CHECK_FALSE(session.get(queue));
  channel.delete_result_queue();
  session.delete_queue(queue);
}

TEST_CASE("broker failures name the operation and the reason", "[broker][errors]") {
  auto options = test_options();
  SECTION("nothing listens on the port") {
    auto address = BrokerAddress::parse("amqp://guest:guest@127.0.0.1:1/");
    try {
      BrokerSession session(address, options);
      FAIL("connected to a closed port");
    } catch (const BrokerUnreachable& error) {
      CHECK_THAT(error.what(), Contains("connect") && Contains("127.0.0.1:1"));
    }
  }
  SECTION("wrong password") {
    auto address = test_address();
    address.password = "not-the-password";
    try {
      BrokerSession session(address, options);
      FAIL("logged in with a wrong password");
    } catch (const BrokerRefused& error) {
      CHECK_THAT(error.what(), Contains("log in") && Contains("ACCESS_REFUSED"));
      CHECK(std::string(error.what()).find("not-the-password") == std::string::npos);
    }
  }
  SECTION("a stage queue redeclared with another delivery limit") {
    const std::string queue = unique_name("stage");
    BrokerSession(test_address(), options).declare_stage_queue(queue);
    options.delivery_limit = options.delivery_limit + 1;
    try {
      BrokerSession(test_address(), options).declare_stage_queue(queue);
      FAIL("the broker accepted inequivalent queue arguments");
    } catch (const BrokerRefused& error) {
      CHECK_THAT(error.what(), Contains("declare queue " + queue) && Contains("406"));
    }
    BrokerSession(test_address(), test_options()).delete_queue(queue);
  }
  SECTION("amqps never falls back to plaintext") {
    auto address = test_address();
    address.tls = true;
    address.ca_file = "/etc/ssl/certs/ca-certificates.crt";
    // The test broker speaks plain AMQP on this port: the TLS handshake must fail, not downgrade.
    CHECK_THROWS_AS(BrokerSession(address, options), BrokerError);
    address.ca_file = "/nonexistent/ca.pem";
    CHECK_THROWS_WITH(BrokerSession(address, options), Contains("load CA file /nonexistent/ca.pem"));
  }
  SECTION("a job channel gives up on a broker that never comes") {
    options.give_up_after = 2s;
    const auto started = std::chrono::steady_clock::now();
    try {
      JobChannel channel(BrokerAddress::parse("amqp://guest:guest@127.0.0.1:1/"), options, "never", {});
      FAIL("connected to a closed port");
    } catch (const BrokerUnreachable& error) {
      CHECK_THAT(error.what(), Contains("unreachable") && Contains("giving up"));
    }
    CHECK(std::chrono::steady_clock::now() - started < 5s);
  }
}

// Scenario 6 of issue 4: under a memory alarm the broker keeps the connection but stops reading publishes,
// so no confirm comes. That is the broker's choice, not a failure: the publisher hears connection.blocked
// and waits, however much longer than give_up_after the alarm lasts, and finishes once it clears.
// `count` messages of `bytes` each are published during the alarm; the alarm is cleared three heartbeat
// intervals after the broker reports the connection blocked.
namespace {
void publish_through_alarm(std::size_t bytes, int count, int confirm_window) {
  struct ClearAlarmAtExit {
    ~ClearAlarmAtExit() {
      try {
        broker_ctl("alarm-clear");
      } catch (...) {
      }
    }
  } clear_at_exit;
  auto options = test_options();
  options.give_up_after = 2s;
  const std::string job = unique_name("job");
  options.client_name = job;  // to find this connection in `scripts/broker connections` (as JOB@host:port)
  LogCapture log;
  JobChannel channel(test_address(), options, job, log.fn());
  broker_ctl("alarm");
  // Catch's assertions are not for other threads: this one only runs the script and keeps its status.
  const std::string script = std::getenv("IMGPIPE_TEST_BROKER_CTL");
  const std::string blocked_command = script + " connections | grep -qx '" + job + "@[^ ]* blocked'";
  int clear_status = -1;
  std::thread clear([&] {
    while (std::system(blocked_command.c_str()) != 0) std::this_thread::sleep_for(200ms);
    std::this_thread::sleep_for(3 * options.heartbeat);  // the broker would have dropped a silent peer
    clear_status = std::system((script + " alarm-clear").c_str());
  });
  std::vector<std::uint8_t> body(bytes);
  for (int i = 0; i < count; ++i) {
    body[0] = static_cast<std::uint8_t>(i);
    // With a confirm window of 1 the second publish waits for the first one's confirm, far longer than
    // give_up_after; a large one may instead block inside rabbitmq-c's send once the socket buffers are full.
    CHECK_NOTHROW(channel.publish({channel.result_queue(), body, {}}, confirm_window));
  }
  // With a wide window the waiting happens here, as at the end of `imgpipe submit`'s publishing.
  CHECK_NOTHROW(channel.wait_confirms(options.give_up_after, JobChannel::AlarmWait::wait_out));
  clear.join();
  CHECK_FALSE(channel.blocked());
  CHECK(clear_status == 0);
  auto said = [&](const std::string& text) {
    for (const auto& line : log.lines())
      if (line.find(text) != std::string::npos) return true;
    return false;
  };
  CHECK(said("the broker blocked publishing for job " + job + " (low on memory)"));
  CHECK(said("the broker unblocked publishing for job " + job));
  CHECK(channel.reconnects() == 0);
  for (int i = 0; i < count; ++i) {
    const auto result = channel.next_result(30s);
    REQUIRE(result);
    CHECK(result->body.size() == bytes);
    CHECK(result->body[0] == static_cast<std::uint8_t>(i));
    channel.ack(result->delivery_tag);
  }
  channel.delete_result_queue();
}
}  // namespace

TEST_CASE("a publisher waits out a broker alarm longer than give_up_after and finishes once it clears",
          "[broker][job][alarm]") {
  SECTION("waiting for room in the confirm window") {
    publish_through_alarm(100, 3, 1);
  }
  SECTION("waiting for the last confirms") {
    publish_through_alarm(100, 3, 64);
  }
}

TEST_CASE("a publish stuck in the socket under a broker alarm returns once it clears, the connection intact",
          "[broker][job][alarm]") {
  publish_through_alarm(4u << 20, 16, 64);  // 64 MiB: more than the loopback socket buffers hold
}
