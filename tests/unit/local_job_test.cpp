// Local mode pipelined: the next batch is decoded on another thread while the network runs on this one
// (run_overlapped), yet every input still gets exactly one result line, in input order, and an exception
// on either thread reaches the caller without a hang.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "imgpipe/job/local_job.hpp"
#include "imgpipe/transport/local/local_pipeline.hpp"
#include "imgpipe/transport/local/overlapped.hpp"
#include "test_support.hpp"

using namespace imgpipe;
namespace fs = std::filesystem;

TEST_CASE("run_overlapped hands every item over in order, from another thread, never far ahead", "[local]") {
  constexpr std::size_t depth = 2;
  const auto caller = std::this_thread::get_id();
  std::thread::id producer;  // Catch2's assertions are for the test's own thread only
  std::atomic<int> started{0};
  std::vector<int> consumed;
  run_overlapped<int>(
      depth,
      [&](const auto& emit) {
        producer = std::this_thread::get_id();
        for (int i = 0; i < 200; ++i) {
          ++started;
          emit(i);
        }
      },
      [&](int item) {
        CHECK(std::this_thread::get_id() == caller);
        // The item being consumed, `depth` waiting, one being made: no more.
        CHECK(started.load() <= item + 1 + static_cast<int>(depth) + 1);
        if (item % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let it run ahead
        consumed.push_back(item);
      });
  CHECK(producer != caller);
  REQUIRE(consumed.size() == 200);
  for (int i = 0; i < 200; ++i) CHECK(consumed[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("an exception in the producer's thread reaches the caller after the items made before it",
          "[local]") {
  std::vector<int> consumed;
  auto run = [&] {
    run_overlapped<int>(
        1,
        [](const auto& emit) {
          for (int i = 0; i < 5; ++i) emit(i);
          throw std::runtime_error("the decoder broke");
        },
        [&](int item) { consumed.push_back(item); });
  };
  REQUIRE_THROWS_WITH(run(), "the decoder broke");
  CHECK(consumed == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("an exception in the consumer stops the producer, even one that catches std::exception",
          "[local]") {
  std::atomic<int> made{0};
  std::atomic<bool> swallowed{false};
  auto run = [&] {
    run_overlapped<int>(
        1,
        [&](const auto& emit) {
          for (;;) {  // would never end unless emit throws
            try {
              emit(made++);
            } catch (const std::exception&) {
              swallowed = true;
            }
          }
        },
        [](int item) {
          if (item == 3) throw std::logic_error("the network broke");
        });
  };
  REQUIRE_THROWS_AS(run(), std::logic_error);
  CHECK_FALSE(swallowed.load());
  CHECK(made.load() <= 3 + 1 + 1 + 1);  // stopped at its next emit, not left running
}

namespace {

// A photo that decodes, one that does not (random bytes), one cut off half-way, and a file that is not there,
// interleaved so that batches of two mix them, one batch has no image that decodes and the inputs end with
// files that cannot be read.
std::vector<JobInput> mixed_inputs(const fs::path& dir) {
  const fs::path noise = dir / "noise.jpg";
  std::vector<std::uint8_t> bytes(4096);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7919u >> 3);
  test::write_file(noise, bytes);
  const std::vector<fs::path> paths{
      test::opencv_photo("fruits.jpg"),
      dir / "missing.jpg",
      test::skimage_photo("coffee.png"),
      noise,
      test::skimage_photo("truncated.jpg"),
      test::opencv_photo("baboon.jpg"),
      dir / "also-missing.png",
      dir / "missing-too.jpg",
      test::skimage_photo("chelsea.png"),
      test::opencv_photo("butterfly.jpg"),
      noise,
      test::skimage_photo("astronaut.png"),
      dir / "last-missing.jpg",
  };
  std::vector<JobInput> inputs;
  for (std::size_t i = 0; i < paths.size(); ++i) inputs.push_back({"img-" + std::to_string(i), paths[i]});
  return inputs;
}

JobSettings small_batches() {
  JobSettings settings;
  settings.model = "photos";
  settings.batch_size = 2;
  settings.show_progress = false;
  return settings;
}

}  // namespace

// One thread, forward passes of two images: batches of several forward passes each.
ComputeOptions two_per_forward() {
  ComputeOptions options;
  options.threads = 1;
  options.batch_size = 2;
  return options;
}

TEST_CASE("the pipelined local job gives one result per input, in input order, errors kept",
          "[local][photos]") {
  const test::TempDir dir;
  const auto inputs = mixed_inputs(dir.path());
  const JobSettings settings = small_batches();
  const ModelStore store(test::models_dir());
  const ComputeOptions compute = two_per_forward();
  JobResults results(inputs);
  run_local_job(inputs, settings, store, compute, results);
  REQUIRE(results.complete());
  CHECK(results.duplicates() == 0);
  CHECK(results.unknown() == 0);
  CHECK(results.failed() == 7);

  // The same images one at a time through the synchronous pipeline give the same answers.
  LocalPipeline reference(store, compute);
  for (const auto& input : inputs) {
    INFO(input.path);
    const ImageResult* result = results.find(input.image_id);
    REQUIRE(result != nullptr);
    if (!fs::exists(input.path)) {
      CHECK_THAT(result->error, Catch::Contains("cannot read file"));
      continue;
    }
    const auto answers =
        reference.run(ImageBatch{{"job", "", "photos", ""}, {{input.image_id, test::read_file(input.path)}}});
    REQUIRE(answers.size() == 1);
    REQUIRE(answers[0].results.size() == 1);
    CHECK(result->error == answers[0].results[0].error);
    CHECK(result->label == answers[0].results[0].label);
    CHECK(result->score == Approx(answers[0].results[0].score).epsilon(1e-4));
    CHECK(results.model_version_of(input.image_id) == answers[0].job.model_version);
  }

  // One output line per input, in input order.
  std::ostringstream out;
  write_results(out, OutputFormat::jsonl, inputs, results, "photos");
  std::istringstream lines(out.str());
  std::string line;
  std::size_t index = 0;
  while (std::getline(lines, line)) {
    REQUIRE(index < inputs.size());
    const auto json = nlohmann::json::parse(line);
    CHECK(json["image"] == inputs[index].path.string());
    CHECK(json["label"].is_null() == !results.find(inputs[index].image_id)->ok());
    ++index;
  }
  CHECK(index == inputs.size());
}

TEST_CASE("a stop signal raised in the pipelined local job's decoding thread reaches the caller",
          "[local][photos]") {
  const test::TempDir dir;
  const auto inputs = mixed_inputs(dir.path());
  JobSettings settings = small_batches();
  const std::atomic<bool> stop{true};
  settings.stop = &stop;
  JobResults results(inputs);
  // The decoding thread reads the inputs and finds the flag set: its JobInterrupted, not one of this
  // thread's, comes out here, and nothing was classified.
  REQUIRE_THROWS_WITH(
      run_local_job(inputs, settings, ModelStore(test::models_dir()), two_per_forward(), results),
      "interrupted while reading inputs");
  CHECK(results.done() == 0);
}
