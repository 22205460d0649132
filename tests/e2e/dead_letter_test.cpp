// Scenarios 7 and 8: a poison message and malformed messages are dead-lettered with their reason, kept in
// imgpipe.dead, and reach their job's publisher, which answers each image they carried with an error line.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "imgpipe/job/dead_letters.hpp"
#include "imgpipe/messages/codec.hpp"
#include "imgpipe/messages/protocol.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"
#include "imgpipe/transport/amqp/job_channel.hpp"
#include "publisher_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
using namespace std::chrono_literals;

namespace {

// Reads imgpipe.dead until `wanted` messages with header x-test from `markers` arrived (the queue is shared:
// other messages are dropped).
std::map<std::string, IncomingMessage> collect_dead_letters(BrokerSession& session,
                                                            const std::set<std::string>& markers) {
  std::map<std::string, IncomingMessage> found;
  for (int i = 0; i < 600 && found.size() < markers.size(); ++i) {
    while (auto message = session.get(queues::dead)) {
      const auto marker = message->headers.find("x-test");
      if (marker != message->headers.end() && markers.count(marker->second) > 0)
        found.emplace(marker->second, std::move(*message));
    }
    if (found.size() < markers.size()) std::this_thread::sleep_for(100ms);
  }
  return found;
}

void put_le(std::vector<std::uint8_t>& out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// A message in the wire envelope with any version, kind, header and payload: what a buggy or hostile
// producer could send.
std::vector<std::uint8_t> envelope(std::uint16_t version, BatchKind kind, const nlohmann::json& header,
                                   const std::vector<std::uint8_t>& payload) {
  std::vector<std::uint8_t> out = {'I', 'M', 'G', 'P'};
  put_le(out, version, 2);
  out.push_back(static_cast<std::uint8_t>(kind));
  out.push_back(0);
  const std::string text = header.dump();
  put_le(out, text.size(), 4);
  out.insert(out.end(), text.begin(), text.end());
  put_le(out, payload.size(), 8);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

nlohmann::json job_header(const std::string& job_id) {
  return {{"job_id", job_id},
          {"reply_to", queues::results_for(job_id)},
          {"model", "fashion"},
          {"model_version", ""}};
}

}  // namespace

TEST_CASE("a poison image is dead-lettered after the delivery limit and gets its own error line",
          "[e2e][broker][dead-letter]") {
  InputFolder inputs(1);
  // A real photograph with text after its end: OpenCV would classify it; the workers' test hook makes any
  // message holding the marker fail, as a stage bug would, on every delivery.
  const std::string marker = "imgpipe-poison-" + std::to_string(::getpid());
  auto poison_bytes = read_file(skimage_photo("coffee.png"));
  poison_bytes.insert(poison_bytes.end(), marker.begin(), marker.end());
  const auto poison = inputs.dir.path() / "poison" / "poison.png";
  std::filesystem::create_directories(poison.parent_path());
  write_file(poison, poison_bytes);

  Cluster cluster(false, {}, {{"preprocess", {"--test-fail-marker", marker}}});
  TempDir out;
  const auto results_file = out.path() / "results.jsonl";
  // One image per message, so the poison batch holds only the poison image.
  const auto result =
      run_submit({"--batch-size", "1", "--idle-timeout", "120", "--state-dir", out.path().string(), "-o",
                  results_file.string(), inputs.dir.path().string()});
  INFO(result.err);
  CHECK(result.exit_code == 3);  // some images failed, each with its line
  const auto lines = lines_by_image(read_text_file(results_file));
  CHECK(lines.size() == inputs.total() + 1);
  REQUIRE(lines.count(poison.string()) == 1);
  CHECK(lines.at(poison.string())["label"].is_null());
  // Six deliveries: the first and the stage queues' default delivery limit of 5 redeliveries.
  CHECK(
      lines.at(poison.string())["error"] ==
      "dead-lettered from imgpipe.images (preprocess) after 6 deliveries: the stage failed on every attempt "
      "(see the worker logs)");
  for (const auto& path : inputs.photos) {
    INFO(path);
    REQUIRE(lines.count(path) == 1);
    CHECK(lines.at(path)["label"].is_string());
  }
  for (const auto& [path, label] : inputs.true_class) CHECK(lines.at(path)["label"].is_string());
  for (const auto& [path, reason] : inputs.expected_error) {
    INFO(path);
    CHECK_THAT(lines.at(path)["error"].get<std::string>(), Catch::Contains(reason));
  }
  CHECK_THAT(result.err, Catch::Contains("dead-lettered from imgpipe.images"));

  // The operator's record stays in imgpipe.dead, and no stage queue holds anything of the job.
  BrokerSession session(BrokerAddress::parse(broker_url()), {});
  std::optional<IncomingMessage> dead;
  while (auto message = session.get(queues::dead)) {
    if (std::search(message->body.begin(), message->body.end(), marker.begin(), marker.end()) !=
        message->body.end()) {
      dead = std::move(message);
    }
  }
  REQUIRE(dead);
  CHECK(dead->headers.at("x-first-death-reason") == "delivery_limit");
  CHECK(dead->headers.at("x-first-death-queue") == queues::images);
  for (const char* queue : {queues::images, queues::pixels, queues::features})
    CHECK(session.message_count(queue) == 0);
  CHECK(cluster.worker("preprocess").running());
  CHECK_THAT(read_text_file(cluster.log_of("preprocess")), Catch::Contains("test hook: the message holds"));
}

TEST_CASE(
    "malformed oversized and unknown-version messages on every stage queue are dead-lettered with their "
    "reason and reach their job while the workers carry on",
    "[e2e][broker][dead-letter]") {
  // Workers that decode at most 1 MiB, so an oversized message needs no 512 MiB publish.
  Cluster cluster(false, {"--max-message-bytes", "1048576"});
  const auto address = BrokerAddress::parse(broker_url());
  const std::string job_id = "badmsg" + std::to_string(::getpid());
  JobChannel job(address, {}, job_id, {});  // stands in for the job's publisher: its result queue is bound

  struct Case {
    std::string queue;
    std::vector<std::uint8_t> body;
    std::string reason;              // part of x-imgpipe-error
    std::vector<std::string> names;  // the image ids the publisher can still read from it
  };
  const std::vector<std::uint8_t> nine_bytes(9, 7);
  const nlohmann::json pixels_item = {{"id", "p1"}, {"offset", 0}, {"length", 9},
                                      {"width", 2}, {"height", 2}, {"channels", 3}};
  const nlohmann::json features_item = {{"id", "f1"}, {"offset", 0}, {"length", 9}, {"dim", 2}};
  const nlohmann::json images_item = {{"id", "i1"}, {"offset", 4}, {"length", 9}};
  const nlohmann::json big_item = {{"id", "big1"}, {"offset", 0}, {"length", 2u << 20}};
  std::map<std::string, Case> cases;
  for (const char* queue : {queues::images, queues::pixels, queues::features}) {
    const std::string q = queue;
    cases["garbage " + q] = {q, std::vector<std::uint8_t>(64, 'x'), "bad magic bytes", {}};
    cases["version 2 " + q] = {
        q,
        envelope(2, BatchKind::images, {{"job", job_header(job_id)}, {"items", nlohmann::json::array()}}, {}),
        "unsupported schema version 2",
        {}};
    cases["oversized " + q] = {
        q,
        envelope(1, BatchKind::images, {{"job", job_header(job_id)}, {"items", {big_item}}},
                 std::vector<std::uint8_t>(2u << 20, 1)),
        "over the limit of 1048576",
        {"big1"}};
  }
  cases["tensor size pixels"] = {
      queues::pixels,
      envelope(1, BatchKind::pixels, {{"job", job_header(job_id)}, {"items", {pixels_item}}}, nine_bytes),
      "tensor has 9 bytes but its header says 2x2x3 = 12",
      {"p1"}};
  cases["tensor size features"] = {
      queues::features,
      envelope(1, BatchKind::features, {{"job", job_header(job_id)}, {"items", {features_item}}}, nine_bytes),
      "tensor has 9 bytes but its header says 2 floats",
      {"f1"}};
  cases["slice outside images"] = {
      queues::images,
      envelope(1, BatchKind::images, {{"job", job_header(job_id)}, {"items", {images_item}}}, nine_bytes),
      "points outside the payload",
      {"i1"}};

  std::set<std::string> markers;
  for (const auto& [name, test_case] : cases) {
    markers.insert(name);
    job.publish({test_case.queue, test_case.body, {{headers::job, job_id}, {"x-test", name}}});
  }
  job.wait_confirms(30s);

  // Every one is in imgpipe.dead with its reason and source queue...
  BrokerSession session(address, {});
  const auto dead = collect_dead_letters(session, markers);
  for (const auto& [name, test_case] : cases) {
    INFO(name);
    REQUIRE(dead.count(name) == 1);
    CHECK_THAT(dead.at(name).headers.at(headers::error), Catch::Contains(test_case.reason));
    CHECK(dead.at(name).headers.at(headers::source_queue) == test_case.queue);
  }
  // ...and a copy reached the job's result queue, where the publisher reads what it can.
  std::map<std::string, DeadLetter> at_publisher;
  for (int i = 0; i < 100 && at_publisher.size() < cases.size(); ++i) {
    auto message = job.next_result(300ms);
    if (!message) continue;
    REQUIRE(is_dead_letter(*message));
    at_publisher[message->headers.at("x-test")] = read_dead_letter(*message, job_id, 5);
    job.ack(message->delivery_tag);
  }
  for (const auto& [name, test_case] : cases) {
    INFO(name);
    REQUIRE(at_publisher.count(name) == 1);
    CHECK(at_publisher.at(name).image_ids == test_case.names);
    CHECK_THAT(at_publisher.at(name).reason, Catch::StartsWith("dead-lettered from " + test_case.queue) &&
                                                 Catch::Contains(test_case.reason));
  }
  job.delete_result_queue();
  for (const char* queue : {queues::images, queues::pixels, queues::features})
    CHECK(session.message_count(queue) == 0);

  // The workers carry on with a real job.
  CHECK(cluster.worker("preprocess").running());
  CHECK(cluster.worker("feature").running());
  CHECK(cluster.worker("classify").running());
  InputFolder inputs(1);
  TempDir out;
  const auto result = run_submit({"--idle-timeout", "120", "--state-dir", out.path().string(), "-o",
                                  (out.path() / "r.jsonl").string(), inputs.dir.path().string()});
  INFO(result.err);
  CHECK(result.exit_code == 3);
  const auto lines = lines_by_image(read_text_file(out.path() / "r.jsonl"));
  CHECK(lines.size() == inputs.total());
  for (const auto& path : inputs.photos) CHECK(lines.at(path)["label"].is_string());
}
