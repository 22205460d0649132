// Issue 11's finding: a job larger than the broker's spare disk or memory. A publisher that sent the whole
// job before reading results turned it into backlog; the broker's alarm then blocked every publishing
// connection, the workers' too, nothing drained, and the cluster stayed wedged. With the publisher's window
// (a bounded number of the job's images in the broker at once) the same job completes on the same broker.
#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <thread>

#include "e2e_support.hpp"
#include "imgpipe/ops/management_api.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;

constexpr std::uintmax_t kMiB = 1u << 20;

std::string broker_script(const std::vector<std::string>& arguments) {
  const char* script = std::getenv("IMGPIPE_TEST_BROKER_CTL");
  REQUIRE(script != nullptr);
  const auto result = run_tool(script, arguments, 120);
  INFO("scripts/broker: " << result.err);
  REQUIRE(result.exit_code == 0);
  return result.out;
}

// Clears the alarm settings of a spec, whatever way it ends, so later specs find a normal broker.
struct AlarmSettingsCleared {
  ~AlarmSettingsCleared() {
    const char* script = std::getenv("IMGPIPE_TEST_BROKER_CTL");
    if (script != nullptr) run_tool(script, {"alarm-clear"}, 120);
  }
};

// Camera-sized JPEGs (4000x3000, quality 90, as a phone stores them) made from real photographs, then hard
// links to them under distinct names until the folder holds `total_bytes`: the publisher reads every file, so
// the job is that large, while the disk holds only the few distinct files.
struct CameraJob {
  TempDir dir{"imgpipe-camera-job"};
  std::size_t images = 0;
  std::uintmax_t bytes = 0;

  explicit CameraJob(std::uintmax_t total_bytes) {
    std::vector<fs::path> originals;
    for (const auto& source :
         {opencv_photo("fruits.jpg"), opencv_photo("baboon.jpg"), opencv_photo("butterfly.jpg"),
          skimage_photo("coffee.png"), skimage_photo("chelsea.png"), skimage_photo("astronaut.png")}) {
      cv::Mat photo = cv::imread(source.string(), cv::IMREAD_COLOR);
      REQUIRE_FALSE(photo.empty());
      cv::Mat camera;
      cv::resize(photo, camera, cv::Size(4000, 3000), 0, 0, cv::INTER_CUBIC);
      const fs::path file = dir.path() / ("original-" + source.stem().string() + ".jpg");
      REQUIRE(cv::imwrite(file.string(), camera, {cv::IMWRITE_JPEG_QUALITY, 90}));
      originals.push_back(file);
    }
    const fs::path job = dir.path() / "job";
    fs::create_directories(job);
    while (bytes < total_bytes) {
      const fs::path& original = originals[images % originals.size()];
      char name[32];
      std::snprintf(name, sizeof name, "IMG_%05zu.JPG", images);
      fs::create_hard_link(original, job / name);
      bytes += fs::file_size(original);
      ++images;
    }
  }
  fs::path folder() const { return dir.path() / "job"; }
};

ManagementClient management() {
  const char* url = std::getenv("IMGPIPE_TEST_MANAGEMENT");
  REQUIRE(url != nullptr);
  return ManagementClient(ManagementAddress::parse(url));
}

// Submits the job with the publisher's defaults (no window flags) and checks: exit 0, exactly one labelled
// line per image, every worker still running, the stage queues empty afterwards.
void submit_and_check(const CameraJob& job, Cluster& cluster, const TempDir& out) {
  const fs::path results = out.path() / "results.jsonl";
  const auto submit =
      run_tool(worker_binary("imgpipe"),
               {"submit", "--quiet", "--idle-timeout", "300", "--state-dir", (out.path() / "state").string(),
                "-o", results.string(), job.folder().string()},
               1800, broker_environment());
  INFO("submit: " << submit.err);
  CHECK(submit.exit_code == 0);
  const auto lines = lines_by_image(read_text_file(results));  // fails on a duplicate line
  CHECK(lines.size() == job.images);
  std::size_t labelled = 0;
  for (const auto& [path, line] : lines) labelled += line["label"].is_string() && line["error"].is_null();
  CHECK(labelled == job.images);
  for (const std::string role : {"preprocess", "feature", "classify"}) {
    INFO(role << " log: " << read_text_file(cluster.log_of(role)));
    CHECK(cluster.worker(role).running());
  }
  const ManagementClient api = management();
  for (const std::string queue : {"imgpipe.images", "imgpipe.pixels", "imgpipe.features"}) {
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    std::uint64_t depth = 0;
    do {
      const auto stats = api.queue("/", queue);
      depth = stats ? stats->depth() : 0;
      if (depth == 0) break;
      std::this_thread::sleep_for(500ms);
    } while (std::chrono::steady_clock::now() < give_up);
    INFO(queue);
    CHECK(depth == 0);
  }
}

// The job on a broker that has `headroom` to spare by `verb` (disk-headroom or memory-headroom).
void run_on_broker_with_headroom(const std::string& verb, std::uintmax_t headroom) {
  const CameraJob job(1900 * kMiB);
  Cluster cluster;
  TempDir out;
  const AlarmSettingsCleared cleared;
  broker_script({verb, std::to_string(headroom)});
  submit_and_check(job, cluster, out);
}

}  // namespace

TEST_CASE("a job of 1.9 GB of camera photos completes on a broker with 800 MB of free disk to spare",
          "[e2e][broker][alarm][headroom]") {
  run_on_broker_with_headroom("disk-headroom", 800 * kMiB);
}

TEST_CASE("a job of 1.9 GB of camera photos completes on a broker with 800 MB of memory to spare",
          "[e2e][broker][alarm][headroom]") {
  run_on_broker_with_headroom("memory-headroom", 800 * kMiB);
}
