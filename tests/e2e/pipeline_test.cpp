#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "e2e_support.hpp"
#include "imgpipe/messages/protocol.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/transport/amqp/broker.hpp"
#include "imgpipe/transport/amqp/job_channel.hpp"
#include "imgpipe/transport/amqp/queue_worker.hpp"

using namespace imgpipe;
using namespace imgpipe::test;

namespace {
const std::filesystem::path tool() {
  return worker_binary("imgpipe");
}

// The broker URL (with its password) goes in the environment: broker_environment().
std::vector<std::string> tool_flags() {
  return {"--models", models_dir().string()};
}

RunResult submit(const InputFolder& inputs, const std::string& output) {
  auto arguments = std::vector<std::string>{"submit", "--model", "fashion"};
  auto flags = tool_flags();
  arguments.insert(arguments.end(), flags.begin(), flags.end());
  arguments.insert(arguments.end(),
                   {"--quiet", "--idle-timeout", "120", "-o", output, inputs.dir.path().string()});
  return run_tool(tool(), arguments, 600, broker_environment());
}

RunResult run_local(const InputFolder& inputs, const std::string& output) {
  return run_tool(tool(), {"run", "--models", models_dir().string(), "--model", "fashion", "--quiet", "-o",
                           output, inputs.dir.path().string()});
}

// Every input has exactly one line: the right error for broken files, a label for everything else.
void check_one_line_per_image(const InputFolder& inputs, const std::map<std::string, nlohmann::json>& lines) {
  CHECK(lines.size() == inputs.total());
  for (const auto& [path, reason] : inputs.expected_error) {
    INFO(path);
    REQUIRE(lines.count(path) == 1);
    CHECK(lines.at(path)["label"].is_null());
    CHECK_THAT(lines.at(path)["error"].get<std::string>(), Catch::Contains(reason));
  }
  for (const auto& path : inputs.photos) {
    INFO(path);
    REQUIRE(lines.count(path) == 1);
    CHECK(lines.at(path)["error"].is_null());
    CHECK(lines.at(path)["label"].is_string());
  }
}

double accuracy(const InputFolder& inputs, const std::map<std::string, nlohmann::json>& lines) {
  std::size_t right = 0;
  for (const auto& [path, label] : inputs.true_class) {
    if (lines.count(path) && lines.at(path)["label"] == label) ++right;
  }
  return static_cast<double>(right) / static_cast<double>(inputs.true_class.size());
}
}  // namespace

TEST_CASE("imgpipe submit classifies a folder through real worker processes, one line per image",
          "[e2e][broker]") {
  InputFolder inputs(10);
  Cluster cluster;
  TempDir out;
  const auto result = submit(inputs, (out.path() / "results.jsonl").string());
  INFO(result.err);
  CHECK(result.exit_code == 3);  // some images failed, each with its own line
  const auto lines = lines_by_image(read_text_file(out.path() / "results.jsonl"));
  check_one_line_per_image(inputs, lines);
  CHECK(accuracy(inputs, lines) >= 0.85);
  for (const auto& [path, line] : lines)
    CHECK_THAT(line["model"].get<std::string>(), Catch::StartsWith("fashion@"));
  CHECK(cluster.worker("preprocess").running());
  CHECK(cluster.worker("feature").running());
  CHECK(cluster.worker("classify").running());
  // SIGTERM is a clean stop: each worker finishes what it holds and exits 0.
  CHECK(cluster.worker("preprocess").stop() == 0);
  CHECK(cluster.worker("feature").stop() == 0);
  CHECK(cluster.worker("classify").stop() == 0);
}

TEST_CASE("local mode and broker mode give identical labels for the same images", "[e2e][broker]") {
  InputFolder inputs(5);
  TempDir out;
  const auto local = run_local(inputs, (out.path() / "local.jsonl").string());
  INFO(local.err);
  REQUIRE(local.exit_code == 3);
  std::map<std::string, nlohmann::json> broker_lines;
  {
    Cluster cluster;
    const auto broker = submit(inputs, (out.path() / "broker.jsonl").string());
    INFO(broker.err);
    REQUIRE(broker.exit_code == 3);
  }
  const auto local_lines = lines_by_image(read_text_file(out.path() / "local.jsonl"));
  broker_lines = lines_by_image(read_text_file(out.path() / "broker.jsonl"));
  REQUIRE(local_lines.size() == broker_lines.size());
  for (const auto& [path, line] : local_lines) {
    INFO(path);
    CHECK(line["label"] == broker_lines.at(path)["label"]);
    CHECK(line["error"] == broker_lines.at(path)["error"]);
    CHECK(line["model"] == broker_lines.at(path)["model"]);
    if (line["score"].is_number())
      CHECK(std::abs(line["score"].get<double>() - broker_lines.at(path)["score"].get<double>()) < 1e-4);
  }
}

TEST_CASE("a fused preprocess+feature worker takes encoded images straight from the publisher",
          "[e2e][broker]") {
  InputFolder inputs(3);
  Cluster cluster(/*fused=*/true);
  TempDir out;
  const auto result = submit(inputs, (out.path() / "results.jsonl").string());
  INFO(result.err);
  CHECK(result.exit_code == 3);
  check_one_line_per_image(inputs, lines_by_image(read_text_file(out.path() / "results.jsonl")));
}

TEST_CASE("a malformed message is dead-lettered with its reason and the worker carries on", "[e2e][broker]") {
  Cluster cluster;
  const auto address = BrokerAddress::parse(broker_url());
  {
    JobChannel channel(address, {}, "garbage-" + std::to_string(::getpid()), {});
    channel.publish(
        {queues::pixels,
         {'n', 'o', 't', ' ', 'a', ' ', 'b', 'a', 't', 'c', 'h', '!', '!', '!', '!', '!', '!', '!', '!', '!'},
         {{"x-test", "malformed"}}});
    channel.wait_confirms(std::chrono::seconds(30));
    channel.delete_result_queue();
  }
  // Read the dead-letter queue until our message shows up.
  std::atomic<bool> stop{false};
  std::string reason;
  WorkerOptions options;
  options.queue = queues::dead;
  QueueWorker reader(address, options,
                     [&](const IncomingMessage& message) -> std::vector<OutgoingMessage> {
                       if (message.headers.count("x-test") && message.headers.at("x-test") == "malformed") {
                         reason = message.headers.count(headers::error) ? message.headers.at(headers::error)
                                                                        : "(no reason header)";
                         stop = true;
                       }
                       return {};
                     },
                     {});
  std::thread deadline([&] {
    for (int i = 0; i < 600 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop = true;
  });
  reader.run(stop);
  deadline.join();
  CHECK_THAT(reason, Catch::Contains("bad magic"));
  CHECK(cluster.worker("feature").running());

  InputFolder inputs(2);
  TempDir out;
  const auto result = submit(inputs, (out.path() / "results.jsonl").string());
  INFO(result.err);
  CHECK(result.exit_code == 3);
  check_one_line_per_image(inputs, lines_by_image(read_text_file(out.path() / "results.jsonl")));
}

TEST_CASE("imgpipe submit says the broker is unreachable and exits 1", "[e2e][cli]") {
  InputFolder inputs(1);
  const auto result = run_tool(
      tool(), {"submit", "--broker", "amqp://127.0.0.1:1/", "--quiet", inputs.dir.path().string()}, 300);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::Contains("could not run") && Catch::Contains("127.0.0.1:1"));
}

TEST_CASE("usage errors exit 2 with a message", "[e2e][cli]") {
  CHECK(run_tool(tool(), {}).exit_code == 2);
  CHECK(run_tool(tool(), {"submit"}).exit_code == 2);
  CHECK(run_tool(tool(), {"frobnicate"}).exit_code == 2);
  CHECK(run_tool(tool(), {"run", "--format", "xml", "x.jpg"}).exit_code == 2);
  const auto bad_url = run_tool(tool(), {"submit", "--broker", "http://nope", "x.jpg"});
  CHECK(bad_url.exit_code == 2);
  CHECK_THAT(bad_url.err, Catch::Contains("broker URL"));
  const auto empty = run_tool(tool(), {"run", "--models", models_dir().string(), TempDir().path().string()});
  CHECK(empty.exit_code == 2);
  CHECK_THAT(empty.err, Catch::Contains("no images found"));
  CHECK(run_tool(tool(), {"train", "--model", "x", "--backbone", "fashion", "/nonexistent"}).exit_code == 2);
  CHECK(run_tool(worker_binary("imgpipe-feature"), {"--prefetch", "0"}).exit_code == 2);
  const auto help = run_tool(worker_binary("imgpipe-classify"), {"--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out,
             Catch::Contains("--broker") && Catch::Contains("--models") && Catch::Contains("IMGPIPE_BROKER"));
}

TEST_CASE("imgpipe run writes CSV on request, and exits 0 when every image is classified", "[e2e][cli]") {
  TempDir dir;
  std::filesystem::copy_file(opencv_photo("fruits.jpg"), dir.path() / "fruits.jpg");
  std::filesystem::copy_file(skimage_photo("coffee.png"), dir.path() / "coffee, with comma.png");
  const auto result = run_tool(tool(), {"run", "--models", models_dir().string(), "--format", "csv",
                                        "--quiet", "@" + (dir.path() / "list.txt").string()});
  CHECK(result.exit_code == 2);  // the list does not exist yet
  std::ofstream(dir.path() / "list.txt") << "# two photos\nfruits.jpg\n\ncoffee, with comma.png\n";
  const auto listed = run_tool(tool(), {"run", "--models", models_dir().string(), "--format", "csv",
                                        "--quiet", "@" + (dir.path() / "list.txt").string()});
  INFO(listed.err);
  CHECK(listed.exit_code == 0);
  CHECK_THAT(listed.out, Catch::StartsWith("image,label,score,model,error\n"));
  CHECK_THAT(listed.out, Catch::Contains("fruits.jpg,") &&
                             Catch::Contains("\"" + (dir.path() / "coffee, with comma.png").string() + "\""));
}

TEST_CASE("an interrupted imgpipe submit still writes one line per image and exits 1", "[e2e][broker][cli]") {
  InputFolder inputs(1);
  TempDir out;
  const auto results_file = out.path() / "results.jsonl";
  std::vector<std::string> arguments = {"submit", "--model", "fashion"};
  for (const auto& flag : tool_flags()) arguments.push_back(flag);
  arguments.insert(arguments.end(), {"-o", results_file.string(), inputs.dir.path().string()});
  // No workers run, so the job waits for results until the signal comes.
  ChildProcess submit(tool(), arguments, out.path() / "submit.log", broker_environment());
  // The child creates its log only after fork; wait for the file, then for the job to be published.
  auto job_started = [&] {
    const auto log_file = out.path() / "submit.log";
    return std::filesystem::exists(log_file) && read_text_file(log_file).find("job ") != std::string::npos;
  };
  for (int i = 0; i < 200 && !job_started(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  REQUIRE(submit.running());
  CHECK(submit.stop(60) == 1);
  const std::string log = read_text_file(out.path() / "submit.log");
  INFO(log);
  CHECK_THAT(log, Catch::Contains("interrupted"));
  const auto lines = lines_by_image(read_text_file(results_file));
  CHECK(lines.size() == inputs.total());
  for (const auto& [path, line] : lines) CHECK(line["error"].is_string());
}
