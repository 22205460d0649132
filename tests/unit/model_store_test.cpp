#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "imgpipe/models/model_store.hpp"
#include "test_support.hpp"

using namespace imgpipe;
namespace fs = std::filesystem;

namespace {
// A copy of the committed default model that a test may damage.
fs::path copy_default_model(const fs::path& store_root) {
  fs::copy(test::models_dir() / "fashion", store_root / "fashion", fs::copy_options::recursive);
  return store_root / "fashion";
}

void rewrite_json(const fs::path& file, const std::function<void(nlohmann::json&)>& change) {
  nlohmann::json json = nlohmann::json::parse(std::ifstream(file));
  change(json);
  std::ofstream(file) << json.dump(2);
}
}  // namespace

TEST_CASE("the committed default model loads and verifies", "[models]") {
  const ModelConfig config = ModelStore(test::models_dir()).load("fashion");
  CHECK(config.input.width == 28);
  CHECK(config.input.height == 28);
  CHECK(config.input.channels == 1);
  CHECK(config.classifier.has_value());
  // Class folders are read in sorted order, as image-folder tools do.
  CHECK(config.classes == std::vector<std::string>{"Ankle_boot", "Bag", "Coat", "Dress", "Pullover", "Sandal",
                                                   "Shirt", "Sneaker", "T-shirt_top", "Trouser"});
  CHECK(config.version.size() == 12);
  CHECK(config.classifier->backbone_sha256 == config.backbone.sha256);
}

TEST_CASE("a model file changed on disk is refused with a clear error", "[models]") {
  test::TempDir store_root;
  const fs::path model = copy_default_model(store_root.path());
  std::ofstream(model / "classifier.dat", std::ios::app) << "tampered";
  CHECK_THROWS_WITH(ModelStore(store_root.path()).load("fashion"),
                    Catch::Contains("classifier file") && Catch::Contains("does not match model.json"));
}

TEST_CASE("a classifier trained on another backbone is refused", "[models]") {
  test::TempDir store_root;
  const fs::path model = copy_default_model(store_root.path());
  rewrite_json(model / "model.json",
               [](auto& json) { json["classifier"]["backbone_sha256"] = std::string(64, 'a'); });
  CHECK_THROWS_WITH(ModelStore(store_root.path()).load("fashion"),
                    Catch::Contains("was trained on the features of backbone"));
}

TEST_CASE("malformed model.json and unknown models give errors that name the problem", "[models]") {
  test::TempDir store_root;
  const ModelStore store(store_root.path());
  CHECK_THROWS_WITH(store.load("nope"), Catch::Contains("model \"nope\" not found"));
  CHECK_THROWS_WITH(store.load("../etc"), Catch::Contains("not a valid model name"));
  const fs::path model = copy_default_model(store_root.path());
  SECTION("not JSON") {
    std::ofstream(model / "model.json") << "{ nope";
    CHECK_THROWS_WITH(store.load("fashion"), Catch::Contains("is not valid JSON"));
  }
  SECTION("missing field") {
    rewrite_json(model / "model.json", [](auto& json) { json["input"].erase("width"); });
    CHECK_THROWS_WITH(store.load("fashion"), Catch::Contains("missing field \"width\""));
  }
  SECTION("file name escaping the model folder") {
    rewrite_json(model / "model.json", [](auto& json) { json["backbone"]["file"] = "../../etc/passwd"; });
    CHECK_THROWS_WITH(store.load("fashion"), Catch::Contains("must be a plain name inside the model folder"));
  }
}

TEST_CASE("model names are confined to a safe alphabet", "[models]") {
  CHECK(is_valid_model_name("fashion"));
  CHECK(is_valid_model_name("resnet50-v1.2_b"));
  CHECK_FALSE(is_valid_model_name(""));
  CHECK_FALSE(is_valid_model_name(".."));
  CHECK_FALSE(is_valid_model_name("a/b"));
  CHECK_FALSE(is_valid_model_name(".hidden"));
}

TEST_CASE("sha256 matches the published test vector", "[models]") {
  CHECK(sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("the photo model names its ONNX file, engine and forward batch, and a bad engine entry is refused",
          "[models]") {
  const ModelConfig photos = ModelStore(test::models_dir()).load("photos");
  REQUIRE(photos.backbone.onnx.has_value());
  CHECK(photos.backbone.onnx->file == "backbone.onnx");
  CHECK(photos.backbone.engine == Engine::openvino);
  CHECK(photos.backbone.precision == Precision::f32);
  CHECK(photos.backbone.batch_size > 0);
  // Written back, the engine fields survive; a model without them (fashion) writes none.
  CHECK(ModelConfig::from_json(photos.to_json(), "photos").backbone.onnx->sha256 ==
        photos.backbone.onnx->sha256);
  // A model with the defaults (libtorch, f32, no ONNX, no batch size) writes none of them, so entries made
  // before engines existed keep their bytes and version.
  ModelConfig plain = photos;
  plain.backbone.onnx.reset();
  plain.backbone.engine = Engine::libtorch;
  plain.backbone.batch_size = 0;
  const auto written = plain.to_json()["backbone"];
  CHECK_FALSE(written.contains("engine"));
  CHECK_FALSE(written.contains("onnx"));
  CHECK_FALSE(written.contains("precision"));
  CHECK_FALSE(written.contains("batch_size"));

  test::TempDir store_root;
  fs::copy(test::models_dir() / "photos", store_root.path() / "photos", fs::copy_options::recursive);
  const fs::path model = store_root.path() / "photos";
  SECTION("a changed ONNX file") {
    std::ofstream(model / "backbone.onnx", std::ios::app) << "tampered";
    CHECK_THROWS_WITH(ModelStore(store_root.path()).load("photos"),
                      Catch::Contains("ONNX backbone file") && Catch::Contains("does not match model.json"));
  }
  SECTION("an unknown engine") {
    rewrite_json(model / "model.json", [](auto& json) { json["backbone"]["engine"] = "tensorrt"; });
    CHECK_THROWS_WITH(ModelStore(store_root.path()).load("photos"),
                      Catch::Contains("engine must be \"libtorch\" or \"openvino\", not \"tensorrt\""));
  }
  SECTION("openvino without an ONNX file") {
    rewrite_json(model / "model.json", [](auto& json) { json["backbone"].erase("onnx"); });
    CHECK_THROWS_WITH(ModelStore(store_root.path()).load("photos"),
                      Catch::Contains("needs an \"onnx\" file"));
  }
  SECTION("an unknown precision and a bad batch size") {
    rewrite_json(model / "model.json", [](auto& json) { json["backbone"]["precision"] = "int4"; });
    CHECK_THROWS_WITH(ModelStore(store_root.path()).load("photos"), Catch::Contains("precision must be"));
    rewrite_json(model / "model.json", [](auto& json) {
      json["backbone"].erase("precision");
      json["backbone"]["batch_size"] = 0;
    });
    CHECK_THROWS_WITH(ModelStore(store_root.path()).load("photos"),
                      Catch::Contains("batch_size must be within"));
  }
}

namespace {
// Saves the model again with a new description: same files, a new model.json, so a new version.
std::string save_edited(const ModelStore& store, const std::string& description) {
  ModelConfig config = store.load("fashion");
  config.description = description;
  return store.save(config);
}

// The same without loading (which would refuse a tampered file): model.json as it is, edited.
std::string save_edited_unchecked(const ModelStore& store, const fs::path& model) {
  ModelConfig config =
      ModelConfig::from_json(nlohmann::json::parse(std::ifstream(model / "model.json")), "fashion");
  config.description = "edited without checking";
  return store.save(config);
}
}  // namespace

TEST_CASE("a replaced version stays loadable from versions/, even after its files are overwritten in place",
          "[models]") {
  test::TempDir store_root;
  const fs::path model = copy_default_model(store_root.path());
  const ModelStore store(store_root.path());
  const std::string v1 = store.current_version("fashion");
  // A new classifier file (another name) and a new model.json: what `imgpipe train` makes, which then
  // overwrites the old file in place.
  ModelConfig replaced = store.load("fashion");
  fs::copy_file(model / "classifier.dat", model / "classifier-2.dat");
  replaced.classifier->file = "classifier-2.dat";
  const std::string v2 = store.save(replaced);
  REQUIRE(v2 != v1);
  std::ofstream(model / "classifier.dat", std::ios::binary | std::ios::app) << "overwritten";

  CHECK(store.current_version("fashion") == v2);
  CHECK(store.kept_versions("fashion") == std::vector<std::string>{v2, v1});
  const ModelConfig old = store.load_version("fashion", v1);
  CHECK(old.version == v1);
  CHECK(old.dir == model / "versions" / v1);
  CHECK(old.classifier->file == "classifier.dat");
  CHECK(store.load_version("fashion", v2).version == v2);
  // The backbone is the same file in both versions: kept once, hard-linked.
  CHECK(fs::hard_link_count(model / "versions" / v1 / "backbone.pt") == 2);
  CHECK(fs::equivalent(model / "versions" / v1 / "backbone.pt", model / "versions" / v2 / "backbone.pt"));
}

TEST_CASE("a version neither current nor kept is refused with the reason, and versions are 12 hex digits",
          "[models]") {
  test::TempDir store_root;
  copy_default_model(store_root.path());
  const ModelStore store(store_root.path());
  const std::string current = store.current_version("fashion");
  CHECK_THROWS_WITH(store.load_version("fashion", "0123456789ab"),
                    Catch::Contains("fashion@0123456789ab is no longer in the store") &&
                        Catch::Contains("version " + current + " now"));
  for (const std::string bad : {"../../etc", "0123456789AB", "0123", "", "0123456789abc"}) {
    INFO(bad);
    CHECK_FALSE(is_valid_model_version(bad));
    CHECK_THROWS_WITH(store.load_version("fashion", bad), Catch::Contains("is not a model version"));
  }
  // The committed model was never saved through the store: its current version loads from its folder.
  CHECK(store.load_version("fashion", current).dir == store_root.path() / "fashion");
}

TEST_CASE("the store keeps the newest versions it is told to, the current one always", "[models]") {
  test::TempDir store_root;
  copy_default_model(store_root.path());
  const ModelStore store(store_root.path(), 3);
  std::vector<std::string> saved{store.current_version("fashion")};
  for (int i = 0; i < 5; ++i) saved.push_back(save_edited(store, "edit " + std::to_string(i)));
  CHECK(store.kept_versions("fashion") == std::vector<std::string>{saved[5], saved[4], saved[3]});
  CHECK_NOTHROW(store.load_version("fashion", saved[3]));
  CHECK_THROWS_WITH(store.load_version("fashion", saved[2]), Catch::Contains("no longer in the store"));
  // Saving an old version again makes it the newest: it is kept, the oldest goes.
  ModelConfig again = store.load_version("fashion", saved[3]);
  CHECK(store.save(again) == saved[3]);
  CHECK(store.kept_versions("fashion") == std::vector<std::string>{saved[3], saved[5], saved[4]});
  // Nothing of a writer's own (staging folders, temporary model.json) is left behind.
  for (const auto& entry : fs::directory_iterator(store_root.path() / "fashion" / "versions"))
    CHECK(entry.path().filename().string().front() != '.');
  for (const auto& entry : fs::directory_iterator(store_root.path() / "fashion"))
    CHECK(entry.path().filename().string().front() != '.');
}

TEST_CASE("a version whose files changed behind model.json's back is not kept", "[models]") {
  test::TempDir store_root;
  const fs::path model = copy_default_model(store_root.path());
  const ModelStore store(store_root.path());
  std::ofstream(model / "classifier.dat", std::ios::binary | std::ios::app) << "tampered";
  const std::string tampered = store.current_version("fashion");
  const std::string next = save_edited_unchecked(store, model);
  CHECK(store.kept_versions("fashion").empty());
  CHECK_THROWS_WITH(store.load_version("fashion", tampered), Catch::Contains("no longer in the store"));
  CHECK_THROWS_WITH(store.load_version("fashion", next), Catch::Contains("does not match model.json"));
}

TEST_CASE("writers saving versions of one model at once, and readers loading them, leave every version whole",
          "[models]") {
  test::TempDir store_root;
  copy_default_model(store_root.path());
  const ModelStore store(store_root.path(), 100);
  const std::string first = store.current_version("fashion");
  std::vector<std::vector<std::string>> saved(4);
  std::atomic<bool> writing{true};
  std::atomic<int> loads{0};
  std::vector<std::string> reader_errors;
  std::thread reader([&] {
    // Whatever model.json names at any moment loads whole, from versions/ or the model folder.
    while (writing) {
      try {
        const std::string version = store.current_version("fashion");
        if (store.load_version("fashion", version).version == version) ++loads;
      } catch (const std::exception& error) {
        reader_errors.push_back(error.what());
      }
    }
  });
  std::vector<std::thread> writers;
  for (std::size_t w = 0; w < saved.size(); ++w) {
    writers.emplace_back([&, w] {
      const ModelStore own(store_root.path(), 100);  // each writer its own store object, as processes have
      for (int i = 0; i < 3; ++i) {
        ModelConfig config = own.load_version("fashion", first);
        config.description = "writer " + std::to_string(w) + " edit " + std::to_string(i);
        saved[w].push_back(own.save(config));
      }
    });
  }
  for (auto& writer : writers) writer.join();
  writing = false;
  reader.join();
  CHECK(reader_errors.empty());
  CHECK(loads > 0);
  const auto kept = store.kept_versions("fashion");
  CHECK(kept.size() == 13);  // the first version and the 12 saved
  for (const auto& versions : saved) {
    for (const auto& version : versions) {
      INFO(version);
      CHECK(std::find(kept.begin(), kept.end(), version) != kept.end());
      CHECK(store.load_version("fashion", version).version == version);
    }
  }
  for (const auto& entry : fs::directory_iterator(store_root.path() / "fashion" / "versions"))
    CHECK(entry.path().filename().string().front() != '.');
}
