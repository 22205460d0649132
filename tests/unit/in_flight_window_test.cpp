// The publisher's window: how much of a job may be in the broker at once.
#include <catch2/catch.hpp>

#include <string>

#include "imgpipe/job/in_flight_window.hpp"

using namespace imgpipe;
using namespace std::chrono_literals;

namespace {

void publish(InFlightWindow& window, int first, int count, std::size_t bytes_each) {
  for (int i = first; i < first + count; ++i) window.published(std::to_string(i), bytes_each);
}

}  // namespace

TEST_CASE("a fixed window admits batches until the images in flight would exceed it", "[window]") {
  WindowLimits limits;
  limits.fixed_images = 64;
  InFlightWindow window(limits, 32);
  REQUIRE(window.admits(32, 100));
  publish(window, 0, 32, 10);
  REQUIRE(window.admits(32, 100));
  publish(window, 32, 32, 10);
  REQUIRE(window.images() == 64);
  REQUIRE_FALSE(window.admits(1, 10));
  window.answered("5");
  REQUIRE(window.admits(1, 10));
  REQUIRE_FALSE(window.admits(2, 10));
}

TEST_CASE("answers of images not in flight (duplicates, never published) change nothing", "[window]") {
  WindowLimits limits;
  limits.fixed_images = 4;
  InFlightWindow window(limits, 4);
  publish(window, 0, 4, 10);
  window.answered("0");
  window.answered("0");
  window.answered("unknown");
  REQUIRE(window.images() == 3);
  REQUIRE(window.bytes() == 30);
  REQUIRE(window.answer_rate() == Approx(1.0 / 3.0));
}

TEST_CASE("the byte limit holds back a batch, but an empty window takes even an oversized one", "[window]") {
  WindowLimits limits;
  limits.max_bytes = 1000;
  InFlightWindow window(limits, 8);
  REQUIRE(window.admits(8, 5000));  // alone it goes, or the job could never finish
  publish(window, 0, 8, 100);
  REQUIRE(window.bytes() == 800);
  REQUIRE(window.admits(2, 200));
  REQUIRE_FALSE(window.admits(2, 201));
  for (int i = 0; i < 8; ++i) window.answered(std::to_string(i));
  REQUIRE(window.bytes() == 0);
  REQUIRE(window.admits(8, 5000));
}

TEST_CASE(
    "the adaptive window starts at four batches, then holds the rate times the unqueued latency and a little",
    "[window]") {
  WindowLimits limits;
  limits.max_images = 2000;
  limits.queueing = 250ms;
  InFlightWindow window(limits, 16);
  const auto start = InFlightWindow::Clock::now();
  REQUIRE(window.image_limit(start) == 64);

  // 1000 answers per second, each 200 ms after its publish: 1000/s x (200 ms + 250 ms) = 450 images.
  for (int i = 0; i < 3000; ++i) {
    const auto published = start + std::chrono::milliseconds(i);
    window.published(std::to_string(i), 1, published);
    window.answered(std::to_string(i), published + 200ms);
  }
  const auto after = start + 3200ms;
  REQUIRE(window.answer_rate(after) == Approx(1000.0).margin(10.0));
  REQUIRE(window.unqueued_latency(after) == std::chrono::nanoseconds(200ms));
  REQUIRE(window.image_limit(after) == Approx(450).margin(5));

  // A slow pipeline (the shortest time 2 s) allows half its own time of queueing: 1000/s x 3 s, capped at
  // 2000.
  InFlightWindow slow(limits, 16);
  for (int i = 0; i < 3000; ++i) {
    const auto published = start + std::chrono::milliseconds(i);
    slow.published(std::to_string(i), 1, published);
    slow.answered(std::to_string(i), published + 2s);
  }
  REQUIRE(slow.image_limit(start + 5s) == 2000);

  // Answers stopping (a stalled stage) bring the window back to its floor.
  REQUIRE(window.image_limit(after + 20s) == 64);
}

TEST_CASE("after drain_every_bytes published, nothing more goes until every image in flight is answered",
          "[window]") {
  WindowLimits limits;
  limits.fixed_images = 1000;
  limits.max_bytes = 1000;
  limits.drain_every_bytes = 2500;
  InFlightWindow window(limits, 10);
  publish(window, 0, 10, 100);  // 1000 in flight, 1000 since drained
  for (int i = 0; i < 9; ++i) window.answered(std::to_string(i));
  publish(window, 10, 9, 100);  // "9" is still in flight: 1900 since drained
  for (int i = 10; i < 19; ++i) window.answered(std::to_string(i));
  publish(window, 19, 6, 100);  // 2500
  REQUIRE(window.bytes() == 700);
  REQUIRE(window.bytes_since_drained() == 2500);
  REQUIRE_FALSE(window.admits(1, 1));
  window.answered("9");
  for (int i = 19; i < 24; ++i) window.answered(std::to_string(i));
  REQUIRE_FALSE(window.admits(1, 1));  // one image is still in flight
  window.answered("24");
  REQUIRE(window.bytes_since_drained() == 0);
  REQUIRE(window.admits(10, 1000));
}
