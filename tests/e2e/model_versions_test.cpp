// Scenario 10 of issue 4 and model updates of issue 12: several model versions in one worker cluster. Every
// result line names the model@version that produced it; a batch is processed by one version end to end: a
// stage whose model was replaced on disk since the batch was stamped runs the batch on the stamped version
// (kept loaded, or loaded from the store's versions/), so a model replaced mid-job costs no image; a batch
// whose version is neither loaded nor kept fails its images with the reason; a model file that no longer
// matches its sha256 gives clear errors, never results from the wrong file.
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
  fs::path train_folder() const { return work.path() / "train"; }
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

// Waits until the management API sees the queue empty.
void wait_until_queue_empty(const std::string& queue, std::chrono::steady_clock::time_point give_up) {
  // The management API's figures lag a second or more: first see the queue empty (what earlier specs left
  // has drained and the figures caught up), so that a depth seen below is this job's.
  while (queue_depth(queue) != 0) {
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    std::this_thread::sleep_for(200ms);
  }
}

// Waits until the management API sees something in the queue.
void wait_for_depth(const std::string& queue, std::chrono::steady_clock::time_point give_up) {
  while (queue_depth(queue) == 0) {
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    std::this_thread::sleep_for(200ms);
  }
}

// `count` Fashion-MNIST test images as PNG files in one folder, with their classes.
struct FashionFolder {
  TempDir dir{"imgpipe-fashion-images"};
  std::map<std::string, std::string> true_class;  // path -> class
  explicit FashionFolder(std::size_t count) {
    const auto images = load_fashion_mnist(kDefaultFashionMnistDir, FashionMnistSplit::test);
    REQUIRE(images.size() >= count);
    for (std::size_t i = 0; i < count; ++i) {
      const cv::Mat image(28, 28, CV_8UC1, const_cast<std::uint8_t*>(images.image(i)));
      const fs::path file = dir.path() / ("test-" + std::to_string(i) + ".png");
      REQUIRE(cv::imwrite(file.string(), image));
      true_class[file.string()] = fashion_mnist_class_names()[images.labels[i]];
    }
  }
};

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
    "a model replaced on disk mid-job: batches stamped before finish on their version, a version no longer "
    "in the store fails clearly, tampered files give errors",
    "[e2e][broker][models]") {
  TwoModelStore store;
  const ModelStore models(store.root);
  const std::string v1 = store.version("fashion");
  InputFolder inputs(10);
  Cluster cluster(false, {"--models", store.root.string()});
  TempDir out;

  // Job 1 is in flight with version 1: classify is held (before it loaded anything) until feature batches
  // stamped v1 wait for it.
  const auto give_up = std::chrono::steady_clock::now() + 240s;  // only keeps a broken run from hanging
  wait_until_queue_empty("imgpipe.features", give_up);
  const pid_t classify = cluster.worker("classify").pid();
  REQUIRE(::kill(classify, SIGSTOP) == 0);
  ChildProcess first(worker_binary("imgpipe"),
                     submit_arguments(store.root, "fashion", inputs, out.path() / "1.jsonl"),
                     out.path() / "1.log", broker_environment());
  wait_for_depth("imgpipe.features", give_up);
  // Replace `fashion` with the three-class classifier: a new model.json (atomically renamed) and file; then
  // v1's own classifier file is overwritten in place with another valid classifier, as `imgpipe train`
  // does: v1 now exists only in the store's versions/.
  ModelConfig replaced = models.load("three");
  const fs::path three_classifier = replaced.classifier_path();
  fs::copy_file(three_classifier, store.root / "fashion" / "classifier-three.dat");
  replaced.name = "fashion";
  replaced.classifier->file = "classifier-three.dat";
  replaced.description = "replaced while workers run";
  const std::string v2 = models.save(replaced);
  REQUIRE(v2 != v1);
  fs::copy_file(three_classifier, store.root / "fashion" / "classifier.dat",
                fs::copy_options::overwrite_existing);
  REQUIRE(::kill(classify, SIGCONT) == 0);
  while (first.running()) std::this_thread::sleep_for(200ms);
  CHECK(first.stop() == 3);  // the broken inputs
  std::size_t v2_labels = 0;
  std::size_t v1_labels = 0;
  std::size_t v1_right = 0;
  for (const auto& [path, line] : lines_by_image(read_text_file(out.path() / "1.jsonl"))) {
    INFO(path << ": " << line.dump());
    if (inputs.expected_error.count(path)) continue;
    // No image fails for the replacement, and a label comes from the version its line names.
    REQUIRE(line["label"].is_string());
    REQUIRE((line["model"] == "fashion@" + v1 || line["model"] == "fashion@" + v2));
    if (line["model"] == "fashion@" + v2) {
      CHECK(three_classes.count(line["label"].get<std::string>()) == 1);
      ++v2_labels;
    } else {
      ++v1_labels;
      if (inputs.true_class.count(path) && inputs.true_class.at(path) == line["label"]) ++v1_right;
    }
  }
  // The batches that waited for classify were stamped v1: classify loaded v1 from versions/ (its files in
  // the model folder were overwritten) and the labels are v1's ten classes, right as often as v1 is.
  CHECK(v1_labels >= 1);
  CHECK(v1_right >= v1_labels * 7 / 10);
  WARN("job 1: " << v1_labels << " labelled by v1 (" << v1_right << " right), " << v2_labels << " by v2");
  CHECK_THAT(read_text_file(cluster.log_of("classify")),
             Catch::Contains("loaded model fashion version " + v1));

  // Job 2 is stamped with a version v3 that classify never loaded, and that a store keeping one version
  // removes when v4 is saved: its waiting batches fail with the reason, and no line has a v3 label.
  wait_until_queue_empty("imgpipe.features", give_up);
  replaced.description = "version 3";
  const std::string v3 = models.save(replaced);
  REQUIRE(::kill(classify, SIGSTOP) == 0);
  ChildProcess second(worker_binary("imgpipe"),
                      submit_arguments(store.root, "fashion", inputs, out.path() / "2.jsonl"),
                      out.path() / "2.log", broker_environment());
  wait_for_depth("imgpipe.features", give_up);
  replaced.description = "version 4";
  const std::string v4 = ModelStore(store.root, 1).save(replaced);
  REQUIRE(models.kept_versions("fashion") == std::vector<std::string>{v4});
  REQUIRE(::kill(classify, SIGCONT) == 0);
  while (second.running()) std::this_thread::sleep_for(200ms);
  CHECK(second.stop() == 3);
  std::size_t gone = 0;
  for (const auto& [path, line] : lines_by_image(read_text_file(out.path() / "2.jsonl"))) {
    INFO(path << ": " << line.dump());
    if (inputs.expected_error.count(path)) continue;
    if (line["label"].is_string()) {
      CHECK(line["model"] == "fashion@" + v4);  // batches stamped after v4 was saved
      CHECK(three_classes.count(line["label"].get<std::string>()) == 1);
    } else {
      CHECK_THAT(line["error"].get<std::string>(),
                 Catch::Contains("fashion@" + v3 + " is no longer in the store") &&
                     Catch::Contains("submit these images again"));
      ++gone;
    }
  }
  CHECK(gone >= 1);  // the batches that waited for classify
  WARN("job 2: " << gone
                 << " images of batches stamped with the version no longer kept failed with the reason");

  // A job after the replacement runs on the current version alone.
  for (const auto& [path, line] : run_job(store.root, "fashion", inputs, out.path() / "3.jsonl")) {
    if (inputs.expected_error.count(path)) continue;
    INFO(path << ": " << line.dump());
    CHECK(line["model"] == "fashion@" + v4);
    CHECK(three_classes.count(line["label"].get<std::string>()) == 1);
  }

  // The classifier file swapped for another valid one behind model.json's back: the workers keep the copy
  // they verified for this version, so no line comes from the unverified file...
  fs::copy_file(models_dir() / "fashion" / "classifier.dat", store.root / "fashion" / "classifier-three.dat",
                fs::copy_options::overwrite_existing);
  for (const auto& [path, line] : run_job(store.root, "fashion", inputs, out.path() / "4.jsonl")) {
    if (inputs.expected_error.count(path)) continue;
    INFO(path << ": " << line.dump());
    CHECK(line["model"] == "fashion@" + v4);
    CHECK(three_classes.count(line["label"].get<std::string>()) == 1);
  }
  // ...and once model.json changes (a new version to load), the mismatch is an error on every line: the
  // store does not keep a version whose files do not verify, so the workers load it from the model folder.
  replaced.description = "edited again, classifier file still swapped";
  models.save(replaced);
  for (const auto& [path, line] : run_job(store.root, "fashion", inputs, out.path() / "5.jsonl")) {
    INFO(path << ": " << line.dump());
    REQUIRE(line["error"].is_string());
    if (inputs.expected_error.count(path)) continue;
    CHECK_THAT(line["error"].get<std::string>(),
               Catch::Contains("classifier file") && Catch::Contains("does not match model.json: sha256 is"));
  }
}

TEST_CASE(
    "a model retrained with imgpipe train while a job of thousands of images runs fails no image, and lines "
    "name the old and the new version",
    "[e2e][broker][models]") {
  constexpr std::size_t kImages = 3000;
  TwoModelStore store;
  const std::string v1 = store.version("fashion");
  FashionFolder images(kImages);
  // Classify slowed a little per batch, so the job lasts longer than a retraining; a second classify
  // replica joins after the model changed, a worker that never loaded v1.
  Cluster cluster(false, {"--models", store.root.string()},
                  {{"classify", {"--fault-handler-delay-ms", "100"}}});
  TempDir out;
  const fs::path output = out.path() / "results.jsonl";
  ChildProcess job(
      worker_binary("imgpipe"),
      {"submit", "--models", store.root.string(), "--model", "fashion", "--batch-size", "16", "--state-dir",
       (out.path() / "state").string(), "-o", output.string(), images.dir.path().string()},
      out.path() / "submit.log", broker_environment());
  // Mid-job: classify has answered for v1.
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  while (read_text_file(cluster.log_of("classify")).find("loaded model fashion version " + v1) ==
         std::string::npos) {
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    REQUIRE(job.running());
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(1s);
  // Retrain `fashion` in place on three classes: backbone.pt stays, classifier.dat is overwritten, model.json
  // names the new version.
  const auto trained =
      run_tool(worker_binary("imgpipe"), {"train", "--models", store.root.string(), "--quiet", "--model",
                                          "fashion", "--backbone", "fashion", store.train_folder().string()});
  INFO(trained.out << trained.err);
  REQUIRE(trained.exit_code == 0);
  const std::string v2 = store.version("fashion");
  REQUIRE(v2 != v1);
  REQUIRE(job.running());  // the replacement happened mid-job
  ChildProcess second_classify(worker_binary("imgpipe-classify"),
                               {"--threads", "1", "--models", store.root.string(), "--metrics-port", "0"},
                               out.path() / "classify-2.log", broker_environment());
  CHECK(job.wait(600) == 0);  // every image classified

  const auto lines = lines_by_image(read_text_file(output));
  REQUIRE(lines.size() == kImages);
  std::map<std::string, std::size_t> by_version;
  std::size_t errors = 0;
  std::size_t v1_right = 0;
  for (const auto& [path, line] : lines) {
    INFO(path << ": " << line.dump());
    if (!line["error"].is_null() && line["error"] != "") ++errors;
    REQUIRE(line["label"].is_string());
    ++by_version[line["model"].get<std::string>()];
    if (line["model"] == "fashion@" + v2) {
      CHECK(three_classes.count(line["label"].get<std::string>()) == 1);
    } else {
      REQUIRE(line["model"] == "fashion@" + v1);
      if (images.true_class.at(path) == line["label"]) ++v1_right;
    }
  }
  CHECK(errors == 0);
  CHECK(by_version.size() == 2);
  CHECK(by_version["fashion@" + v1] >= 1);
  CHECK(by_version["fashion@" + v2] >= 1);
  CHECK(v1_right >= by_version["fashion@" + v1] * 8 / 10);
  const std::string second_log = read_text_file(out.path() / "classify-2.log");
  WARN(kImages << " images: " << by_version["fashion@" + v1] << " lines fashion@" << v1 << " (" << v1_right
               << " right), " << by_version["fashion@" + v2] << " lines fashion@" << v2
               << "; the replica started after the retraining "
               << (second_log.find("version " + v1) != std::string::npos ? "loaded" : "did not need")
               << " v1");
  CHECK(second_classify.stop() == 0);
}
