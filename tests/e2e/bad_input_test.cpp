// The bad-input corpus through the real tool, locally and through real workers, and a decompression bomb
// sent to workers that run under an address-space limit.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <fstream>
#include <iostream>

#include "bad_input_corpus.hpp"
#include "e2e_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> job_arguments(const std::string& command, const fs::path& output,
                                       const std::vector<std::string>& inputs) {
  std::vector<std::string> arguments = {command,   "--models", models_dir().string(), "--model", "fashion",
                                        "--quiet", "-o",       output.string()};
  if (command == "submit") arguments.insert(arguments.end(), {"--idle-timeout", "120"});
  arguments.insert(arguments.end(), inputs.begin(), inputs.end());
  return arguments;
}

std::map<std::string, nlohmann::json> run_job(const std::string& command, const fs::path& output,
                                              const std::vector<std::string>& inputs, int expected_exit) {
  const RunResult result =
      run_tool(worker_binary("imgpipe"), job_arguments(command, output, inputs), 600, broker_environment());
  INFO(command << ": " << result.err);
  CHECK(result.exit_code == expected_exit);
  return lines_by_image(read_text_file(output));
}

// Every corpus input has exactly its line: the exact error, or a label and no error.
void check_corpus_lines(const BadInputCorpus& corpus, const std::map<std::string, nlohmann::json>& lines) {
  CHECK(lines.size() == corpus.expected.size());
  for (const auto& [image, error] : corpus.expected) {
    INFO(image);
    REQUIRE(lines.count(image) == 1);
    const auto& line = lines.at(image);
    if (error.empty()) {
      CHECK(line["error"].is_null());
      CHECK(line["label"].is_string());
    } else {
      CHECK(line["label"].is_null());
      CHECK(line["error"] == error);
    }
  }
}

// A field of /proc/PID/status in MiB (VmHWM: peak resident set; VmSize: address space now).
double proc_status_mib(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  }
  FAIL("no " << field << " in /proc/" << pid << "/status");
  return 0;
}

}  // namespace

TEST_CASE("every input of the bad-input corpus gets its one line, the same locally and through workers",
          "[e2e][broker][corpus]") {
  BadInputCorpus corpus;
  TempDir out;
  const auto local = run_job("run", out.path() / "local.jsonl", corpus.arguments(), 3);
  check_corpus_lines(corpus, local);
  for (const bool fused : {false, true}) {
    CAPTURE(fused);
    std::map<std::string, nlohmann::json> broker;
    {
      Cluster cluster(fused);
      broker = run_job("submit", out.path() / "broker.jsonl", corpus.arguments(), 3);
      // Nothing in the corpus takes a worker down.
      for (const std::string role : {fused ? "feature" : "preprocess", "feature", "classify"})
        CHECK(cluster.worker(role).running());
    }
    check_corpus_lines(corpus, broker);
    for (const auto& [image, line] : local) {
      INFO(image);
      REQUIRE(broker.count(image) == 1);
      CHECK(broker.at(image)["error"] == line["error"]);
      CHECK(broker.at(image)["label"] == line["label"]);
    }
  }
}

TEST_CASE("a folder with no images in it is a usage error, in both modes", "[e2e][corpus][cli]") {
  TempDir empty;
  test::write_file(empty.path() / "README.txt", {'h', 'i', '\n'});
  fs::create_directories(empty.path() / "sub");
  for (const std::string command : {"run", "submit"}) {
    const RunResult result = run_tool(worker_binary("imgpipe"),
                                      job_arguments(command, empty.path() / "out.jsonl", {empty.path()}));
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.err,
               Catch::Contains("no images found in the given inputs (skipped 1 file that is not an "
                               "image by its extension: " +
                               (empty.path() / "README.txt").string() + ")"));
  }
}

// Files without an image extension have no result line; the summary names them (and says how many more).
TEST_CASE("imgpipe run names the files of a folder it skipped by their extension, even with --quiet",
          "[e2e][corpus][cli]") {
  TempDir dir;
  fs::copy_file(opencv_photo("fruits.jpg"), dir.path() / "fruits.jpg");
  test::write_file(dir.path() / "notes.txt", {'h', 'i', '\n'});
  for (int i = 0; i < 11; ++i) test::write_file(dir.path() / ("layer" + std::to_string(i) + ".xcf"), {1});
  TempDir out;
  const RunResult result =
      run_tool(worker_binary("imgpipe"), job_arguments("run", out.path() / "out.jsonl", {dir.path()}));
  INFO(result.err);
  CHECK(result.exit_code == 0);
  const auto lines = lines_by_image(read_text_file(out.path() / "out.jsonl"));
  CHECK(lines.size() == 1);
  CHECK(lines.count((dir.path() / "fruits.jpg").string()) == 1);
  CHECK_THAT(result.err,
             Catch::Contains("skipped 12 files that are not images by their extension: " +
                             (dir.path() / "layer0.xcf").string() + ", ") &&
                 // sorted by name: layer0, layer1, layer10, layer2 ... layer8; then layer9, notes.txt
                 Catch::Contains((dir.path() / "layer8.xcf").string() + " and 2 more\n"));
}

// The worker must refuse the bomb from its header, not survive decoding it: under an address-space limit of
// its working size plus 256 MiB a decode of the 400-megapixel bomb could not even be attempted, and its
// peak resident set must stay where a small photo left it.
TEST_CASE("a decompression bomb is refused from its header by workers under a memory limit, which stay small",
          "[e2e][broker][bomb]") {
  TempDir inputs;
  const fs::path bomb = inputs.path() / "bomb.png";
  write_png_bomb(bomb, 20000, 20000);
  INFO("bomb: " << fs::file_size(bomb) << " bytes on disk, 400,000,000 pixels");
  const fs::path photo = inputs.path() / "photo.jpg";
  fs::copy_file(opencv_photo("fruits.jpg"), photo);
  TempDir out;
  for (const bool fused : {false, true}) {
    CAPTURE(fused);
    Cluster cluster(fused);
    ChildProcess& decoder = cluster.worker(fused ? "feature" : "preprocess");
    // Warm up on a real photo: the model is loaded and one image decoded, as in normal work.
    run_job("submit", out.path() / "warm.jsonl", {photo.string()}, 0);
    const double working_size = proc_status_mib(decoder.pid(), "VmSize");
    const double warm_peak = proc_status_mib(decoder.pid(), "VmHWM");
    const auto limit = static_cast<rlim_t>((working_size + 256.0) * 1024 * 1024);
    const rlimit address_space{limit, limit};
    REQUIRE(::prlimit(decoder.pid(), RLIMIT_AS, &address_space, nullptr) == 0);

    const auto lines = run_job("submit", out.path() / "bomb.jsonl", {bomb.string(), photo.string()}, 3);
    REQUIRE(lines.count(bomb.string()) == 1);
    CHECK(
        lines.at(bomb.string())["error"] ==
        "png header claims 20000x20000 pixels, over the limit of 100000000 pixels or 30000 per side (refused "
        "before decoding)");
    REQUIRE(lines.count(photo.string()) == 1);
    CHECK(lines.at(photo.string())["label"].is_string());
    REQUIRE(decoder.running());
    const double bomb_peak = proc_status_mib(decoder.pid(), "VmHWM");
    std::cerr << (fused ? "fused preprocess+feature" : "preprocess") << " worker: VmSize " << working_size
              << " MiB, RLIMIT_AS " << limit / (1024 * 1024) << " MiB, VmHWM " << warm_peak
              << " MiB after a photo, " << bomb_peak << " MiB after the bomb\n";
    // Decoding even the bomb's grey plane alone would add 381 MiB.
    CHECK(bomb_peak < warm_peak + 64.0);
    CHECK(decoder.stop() == 0);
  }
}
