// Scenario 10 of issue 4: several model versions in one worker cluster. Every result line names the
// model@version that produced it; a batch is processed by one version end to end (a stage whose model
// changed on disk since the batch was stamped fails its images instead of mixing); a model file that no
// longer matches its sha256 gives clear errors, never results from the wrong file.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include "e2e_support.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/ops/management_api.hpp"
#include "imgpipe/training/fashion_mnist.hpp"

#include <opencv2/imgcodecs.hpp>

using namespace imgpipe;
using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;

const std::set<std::string> three_classes = {"Bag", "Sneaker", "Trouser"};

// A model store of its own: the committed `fashion`, and `three`, a classifier trained on its backbone's
// features for three classes only, so a line's label alone tells which model made it.
struct TwoModelStore {
  TempDir work{"imgpipe-models"};
  fs::path root = work.path() / "models";

  TwoModelStore() {
    fs::create_directories(root);
    fs::copy(models_dir() / "fashion", root / "fashion", fs::copy_options::recursive);
    const fs::path train = work.path() / "train";
    const auto images = load_fashion_mnist(kDefaultFashionMnistDir, FashionMnistSplit::train);
    for (const std::string& name : three_classes) {
      const auto& names = fashion_mnist_class_names();
      const int label = static_cast<int>(std::find(names.begin(), names.end(), name) - names.begin());
      fs::create_directories(train / name);
      std::size_t written = 0;
      for (std::size_t i = 0; i < images.size() && written < 40; ++i) {
        if (images.labels[i] != label) continue;
        const cv::Mat image(28, 28, CV_8UC1, const_cast<std::uint8_t*>(images.image(i)));
        REQUIRE(cv::imwrite((train / name / (std::to_string(i) + ".png")).string(), image));
        ++written;
      }
    }
    const auto trained =
        run_tool(worker_binary("imgpipe"), {"train", "--models", root.string(), "--quiet", "--model", "three",
                                            "--backbone", "fashion", train.string()});
    INFO(trained.out << trained.err);
    REQUIRE(trained.exit_code == 0);
  }
  std::string version(const std::string& name) const { return ModelStore(root).load(name).version; }
};

std::vector<std::string> submit_arguments(const fs::path& store, const std::string& model,
                                          const InputFolder& inputs, const fs::path& output) {
  // The broker URL (with its password) goes in the environment: see broker_environment().
  return {"submit",  "--models",      store.string(),
          "--model", model,           "--batch-size",
          "4",       "--state-dir",   (output.parent_path() / "state").string(),
          "-o",      output.string(), inputs.dir.path().string()};
}

std::map<std::string, nlohmann::json> run_job(const fs::path& store, const std::string& model,
                                              const InputFolder& inputs, const fs::path& output) {
  const auto result = run_tool(worker_binary("imgpipe"), submit_arguments(store, model, inputs, output), 600,
                               broker_environment());
  INFO(result.err);
  CHECK((result.exit_code == 0 || result.exit_code == 3));
  auto lines = lines_by_image(read_text_file(output));  // fails on a duplicate line
  CHECK(lines.size() == inputs.total());
  return lines;
}

std::size_t queue_depth(const std::string& queue) {
  const char* url = std::getenv("IMGPIPE_TEST_MANAGEMENT");
  REQUIRE(url != nullptr);
  const auto stats = ManagementClient(ManagementAddress::parse(url)).queue("/", queue);
  return stats ? stats->depth() : 0;
}

}  // namespace

TEST_CASE("two jobs with different models run at once on the same workers and never mix",
          "[e2e][broker][models]") {
  TwoModelStore store;
  const std::string fashion = "fashion@" + store.version("fashion");
  const std::string three = "three@" + store.version("three");
  InputFolder inputs(10);
  Cluster cluster(false, {"--models", store.root.string()});
  TempDir out;

  // Both publishers at once: their batches interleave in every stage queue.
  ChildProcess first(worker_binary("imgpipe"),
                     submit_arguments(store.root, "fashion", inputs, out.path() / "fashion.jsonl"),
                     out.path() / "fashion.log", broker_environment());
  ChildProcess second(worker_binary("imgpipe"),
                      submit_arguments(store.root, "three", inputs, out.path() / "three.jsonl"),
                      out.path() / "three.log", broker_environment());
  for (ChildProcess* job : {&first, &second}) {
    while (job->running()) std::this_thread::sleep_for(200ms);
    CHECK(job->stop() == 3);  // the broken inputs
  }
  const auto fashion_lines = lines_by_image(read_text_file(out.path() / "fashion.jsonl"));
  const auto three_lines = lines_by_image(read_text_file(out.path() / "three.jsonl"));
  REQUIRE(fashion_lines.size() == inputs.total());
  REQUIRE(three_lines.size() == inputs.total());
  std::size_t right = 0;
  std::set<std::string> fashion_labels;
  for (const auto& [path, line] : fashion_lines) {
    INFO(path << ": " << line.dump());
    if (inputs.expected_error.count(path)) continue;
    CHECK(line["model"] == fashion);
    REQUIRE(line["label"].is_string());
    fashion_labels.insert(line["label"].get<std::string>());
    if (inputs.true_class.count(path) && inputs.true_class.at(path) == line["label"]) ++right;
  }
  CHECK(fashion_labels.size() > three_classes.size());  // the ten-class model answered, not `three`
  CHECK(right >= inputs.true_class.size() * 8 / 10);
  for (const auto& [path, line] : three_lines) {
    INFO(path << ": " << line.dump());
    if (inputs.expected_error.count(path)) continue;
    CHECK(line["model"] == three);
    REQUIRE(line["label"].is_string());
    CHECK(three_classes.count(line["label"].get<std::string>()) == 1);
  }
}

TEST_CASE(
    "a model replaced on disk mid-job: each line names its version, stale batches fail, tampered files "
    "give errors",
    "[e2e][broker][models]") {
  TwoModelStore store;
  const ModelStore models(store.root);
  const std::string v1 = store.version("fashion");
  InputFolder inputs(10);
  Cluster cluster(false, {"--models", store.root.string()});
  TempDir out;

  // Job 1 is in flight with version 1: classify is held until feature batches stamped v1 wait for it.
  const auto give_up = std::chrono::steady_clock::now() + 180s;  // only keeps a broken run from hanging
  // The management API's figures lag a second or more: first see the queue empty (what earlier specs left
  // has drained and the figures caught up), so that a depth seen below is this job's.
  while (queue_depth("imgpipe.features") != 0) {
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    std::this_thread::sleep_for(200ms);
  }
  const pid_t classify = cluster.worker("classify").pid();
  REQUIRE(::kill(classify, SIGSTOP) == 0);
  ChildProcess first(worker_binary("imgpipe"),
                     submit_arguments(store.root, "fashion", inputs, out.path() / "1.jsonl"),
                     out.path() / "1.log", broker_environment());
  while (queue_depth("imgpipe.features") == 0) {
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    std::this_thread::sleep_for(200ms);
  }
  // Replace `fashion` with the three-class classifier: a new model.json (atomically renamed) and file.
  ModelConfig replaced = models.load("three");
  fs::copy_file(store.root / "three" / replaced.classifier->file,
                store.root / "fashion" / "classifier-three.dat");
  replaced.name = "fashion";
  replaced.classifier->file = "classifier-three.dat";
  replaced.description = "replaced while workers run";
  const std::string v2 = models.save(replaced);
  REQUIRE(v2 != v1);
  REQUIRE(::kill(classify, SIGCONT) == 0);
  while (first.running()) std::this_thread::sleep_for(200ms);
  CHECK(first.stop() == 3);
  std::size_t stale = 0;
  std::size_t v2_labels = 0;
  std::size_t v1_labels = 0;
  for (const auto& [path, line] : lines_by_image(read_text_file(out.path() / "1.jsonl"))) {
    INFO(path << ": " << line.dump());
    if (inputs.expected_error.count(path)) continue;
    if (line["label"].is_string()) {
      // A label comes from the version its line names, and that version's classes.
      REQUIRE((line["model"] == "fashion@" + v1 || line["model"] == "fashion@" + v2));
      if (line["model"] == "fashion@" + v2) {
        CHECK(three_classes.count(line["label"].get<std::string>()) == 1);
        ++v2_labels;
      } else {
        ++v1_labels;
      }
    } else {
      CHECK_THAT(line["error"].get<std::string>(), Catch::Contains("changed on disk between stages"));
      ++stale;
    }
  }
  CHECK(stale >= 1);  // the batches that waited for classify were stamped v1 and met v2
  // Any v1 label came from a batch classify took before it loaded v2; none is expected with classify held,
  // but a line naming v1 is still right as long as it says so.
  UNSCOPED_INFO("job 1: " << stale << " stale, " << v1_labels << " labelled by v1, " << v2_labels
                          << " by v2");

  // A job after the replacement runs on version 2 alone.
  for (const auto& [path, line] : run_job(store.root, "fashion", inputs, out.path() / "2.jsonl")) {
    if (inputs.expected_error.count(path)) continue;
    INFO(path << ": " << line.dump());
    CHECK(line["model"] == "fashion@" + v2);
    CHECK(three_classes.count(line["label"].get<std::string>()) == 1);
  }

  // The classifier file swapped for another valid one behind model.json's back: the workers keep the copy
  // they verified for this version, so no line comes from the unverified file...
  fs::copy_file(models_dir() / "fashion" / "classifier.dat", store.root / "fashion" / "classifier-three.dat",
                fs::copy_options::overwrite_existing);
  for (const auto& [path, line] : run_job(store.root, "fashion", inputs, out.path() / "3.jsonl")) {
    if (inputs.expected_error.count(path)) continue;
    INFO(path << ": " << line.dump());
    CHECK(line["model"] == "fashion@" + v2);
    CHECK(three_classes.count(line["label"].get<std::string>()) == 1);
  }
  // ...and once model.json changes (a new version to load), the mismatch is an error on every line.
  replaced.description = "edited again, classifier file still swapped";
  models.save(replaced);
  for (const auto& [path, line] : run_job(store.root, "fashion", inputs, out.path() / "4.jsonl")) {
    INFO(path << ": " << line.dump());
    REQUIRE(line["error"].is_string());
    if (inputs.expected_error.count(path)) continue;
    CHECK_THAT(line["error"].get<std::string>(),
               Catch::Contains("classifier file") && Catch::Contains("does not match model.json: sha256 is"));
  }
}
