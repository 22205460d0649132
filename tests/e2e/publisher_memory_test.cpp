// The publisher's memory does not grow with the job: the inputs go to the job's inputs file as the manifest
// is read, lines are written as results arrive, and what it holds is the window's images in flight and the
// results between the oldest unanswered image and the newest answer (results.hpp, broker_job.hpp).
// Before, it held every input, every result and the job record: about 1.2 KB per input.
#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include "e2e_support.hpp"
#include "imgpipe/training/fashion_mnist.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {

struct ManifestRun {
  std::size_t peak_kib = 0;  // the publisher's peak resident memory
  double seconds = 0;
  std::string output;
};

// A manifest of `count` lines naming the first 1,000 Fashion-MNIST test images over and over (the images
// are tiny: the job measures the publisher, not the model).
fs::path write_manifest(const TempDir& dir, const std::string& name, std::size_t count) {
  const fs::path images = dir.path() / "images";
  if (!fs::exists(images)) {
    fs::create_directories(images);
    const auto test_split = load_fashion_mnist(kDefaultFashionMnistDir, FashionMnistSplit::test);
    for (std::size_t i = 0; i < 1000; ++i) {
      const cv::Mat image(kFashionMnistSide, kFashionMnistSide, CV_8UC1,
                          const_cast<std::uint8_t*>(test_split.image(i)));
      REQUIRE(cv::imwrite((images / (std::to_string(i) + ".png")).string(), image));
    }
  }
  const fs::path manifest = dir.path() / (name + ".txt");
  std::ofstream out(manifest);
  for (std::size_t i = 0; i < count; ++i) out << "images/" << i % 1000 << ".png\n";
  return manifest;
}

ManifestRun submit_manifest(const TempDir& dir, const std::string& name, std::size_t count) {
  const fs::path manifest = write_manifest(dir, name, count);
  const fs::path output = dir.path() / (name + ".jsonl");
  const fs::path peak = dir.path() / (name + ".peak");
  const auto start = std::chrono::steady_clock::now();
  const auto result =
      run_tool("/usr/bin/time",
               {"-o", peak.string(), "-f", "%M", worker_binary("imgpipe").string(), "submit", "--quiet",
                "--model", "fashion", "--state-dir", (dir.path() / "state").string(), "-o", output.string(),
                "@" + manifest.string()},
               900, broker_environment());
  INFO(name << ": " << result.err);
  REQUIRE(result.exit_code == 0);
  ManifestRun run;
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.peak_kib = std::stoul(read_text_file(peak));
  run.output = read_text_file(output);
  return run;
}

}  // namespace

TEST_CASE("the publisher's memory stays the same for a 100,000-line manifest as for a 2,000-line one",
          "[e2e][broker][publisher-memory]") {
  TempDir dir("imgpipe-manifest");
  Cluster cluster;
  const ManifestRun small = submit_manifest(dir, "small", 2000);
  const ManifestRun large = submit_manifest(dir, "large", 100000);

  // One line per input, in the manifest's order: line i names image i % 1000 (relative to the manifest).
  std::istringstream lines(large.output);
  std::size_t count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    const auto parsed = nlohmann::json::parse(line);
    REQUIRE(parsed.at("image") == (dir.path() / "images" / (std::to_string(count % 1000) + ".png")).string());
    REQUIRE(parsed.at("error").is_null());
  }
  CHECK(count == 100000);
  for (const auto& entry : fs::directory_iterator(dir.path() / "state" / "jobs"))
    CHECK(entry.path().extension() == ".json");  // the finished jobs' inputs files and journals are gone

  WARN("publisher peak RSS: " << small.peak_kib / 1024 << " MiB for 2,000 inputs (" << small.seconds
                              << " s), " << large.peak_kib / 1024 << " MiB for 100,000 (" << large.seconds
                              << " s)");
  // Holding every input and result, the 98,000 more inputs cost about 115 MiB; held results are bounded
  // by 65,536 (about 16 MiB at most), the rest by the window.
  CHECK(large.peak_kib < small.peak_kib + 40 * 1024);
}
