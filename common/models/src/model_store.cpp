#include "imgpipe/models/model_store.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <utility>

namespace imgpipe {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kFormat = 1;
// <root>/<name>/versions/<version>/: the versions kept after they were replaced.
constexpr const char* kVersionsFolder = "versions";
// Leftovers of a writer that died while keeping or removing a version are removed after this long.
constexpr auto kLeftoverAge = std::chrono::hours(1);

struct DigestContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using DigestContext = std::unique_ptr<EVP_MD_CTX, DigestContextDeleter>;

DigestContext new_sha256() {
  DigestContext context(EVP_MD_CTX_new());
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL could not start a sha256 digest");
  }
  return context;
}

std::string finish_hex(EVP_MD_CTX* context) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context, digest.data(), &length) != 1) {
    throw std::runtime_error("OpenSSL could not finish a sha256 digest");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ModelError("cannot read " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const char* to_string(ResizeMode mode) {
  return mode == ResizeMode::stretch ? "stretch" : "center-crop";
}
const char* to_string(Interpolation mode) {
  switch (mode) {
    case Interpolation::area:
      return "area";
    case Interpolation::linear:
      return "linear";
    case Interpolation::antialiased_linear:
      return "antialiased-linear";
  }
  return "linear";
}

template <typename T>
T field(const json& object, const char* key, const std::string& where) {
  if (!object.is_object() || !object.contains(key)) {
    throw ModelError(where + ": missing field \"" + key + "\"");
  }
  try {
    return object.at(key).get<T>();
  } catch (const json::exception& error) {
    throw ModelError(where + ": field \"" + key + "\" has the wrong type (" + error.what() + ")");
  }
}

bool is_plain_file_name(const std::string& relative) {
  return !relative.empty() && !fs::path(relative).is_absolute() && relative.find("..") == std::string::npos;
}

void check_file(const fs::path& dir, const std::string& relative, const std::string& expected_sha,
                const std::string& what) {
  if (!is_plain_file_name(relative)) {
    throw ModelError(what + " file name \"" + relative + "\" must be a plain name inside the model folder");
  }
  const fs::path file = dir / relative;
  if (!fs::is_regular_file(file)) throw ModelError(what + " file " + file.string() + " is missing");
  const std::string actual = sha256_hex_of_file(file);
  if (actual != expected_sha) {
    throw ModelError(what + " file " + file.string() + " does not match model.json: sha256 is " + actual +
                     ", expected " + expected_sha + " (the file was changed or replaced)");
  }
}

// The files a model.json names, with their sha256.
std::vector<std::pair<std::string, std::string>> files_of(const ModelConfig& config) {
  std::vector<std::pair<std::string, std::string>> files{{config.backbone.file, config.backbone.sha256}};
  if (config.backbone.onnx) files.emplace_back(config.backbone.onnx->file, config.backbone.onnx->sha256);
  if (config.classifier) files.emplace_back(config.classifier->file, config.classifier->sha256);
  return files;
}

// A name for a folder only this writer uses: versions/.<what>-<version>-<pid>-<random>.
fs::path private_name(const fs::path& versions, const std::string& what, const std::string& version) {
  std::random_device random;
  return versions /
         ("." + what + "-" + version + "-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
}

// Moves a folder out of sight by a rename (readers see it whole or not at all), then deletes it.
void remove_folder(const fs::path& folder, const fs::path& versions, const std::string& version) {
  const fs::path doomed = private_name(versions, "removing", version);
  std::error_code error;
  fs::rename(folder, doomed, error);
  if (!error) fs::remove_all(doomed, error);  // another writer removed it first: nothing to do
}

}  // namespace

std::string sha256_hex(const void* data, std::size_t size) {
  auto context = new_sha256();
  if (EVP_DigestUpdate(context.get(), data, size) != 1) throw std::runtime_error("sha256 update failed");
  return finish_hex(context.get());
}

std::string sha256_hex_of_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ModelError("cannot read " + file.string());
  auto context = new_sha256();
  std::vector<char> chunk(1 << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (in.gcount() > 0 &&
        EVP_DigestUpdate(context.get(), chunk.data(), static_cast<std::size_t>(in.gcount())) != 1) {
      throw std::runtime_error("sha256 update failed for " + file.string());
    }
  }
  if (in.bad()) throw ModelError("read error on " + file.string());
  return finish_hex(context.get());
}

namespace {
// A version: the first 12 hex digits of the sha256 of model.json's bytes.
std::string version_of(const std::string& model_json_text) {
  return sha256_hex(model_json_text.data(), model_json_text.size()).substr(0, 12);
}
}  // namespace

bool is_valid_model_version(const std::string& version) {
  return version.size() == 12 && std::all_of(version.begin(), version.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool is_valid_model_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

const char* to_string(Engine engine) {
  return engine == Engine::openvino ? "openvino" : "libtorch";
}

const char* to_string(Precision precision) {
  return precision == Precision::bf16 ? "bf16" : "f32";
}

Engine engine_from_string(const std::string& text) {
  if (text == "libtorch") return Engine::libtorch;
  if (text == "openvino") return Engine::openvino;
  throw ModelError("engine must be \"libtorch\" or \"openvino\", not \"" + text + "\"");
}

Precision precision_from_string(const std::string& text) {
  if (text == "f32") return Precision::f32;
  if (text == "bf16") return Precision::bf16;
  throw ModelError("precision must be \"f32\" or \"bf16\", not \"" + text + "\"");
}

fs::path ModelConfig::onnx_path() const {
  if (!backbone.onnx) {
    throw ModelError("model " + name +
                     " has no ONNX file for the openvino engine (make one with scripts/export-onnx)");
  }
  return dir / backbone.onnx->file;
}

fs::path ModelConfig::classifier_path() const {
  if (!classifier) throw ModelError("model " + name + " has no classifier (it is a backbone-only entry)");
  return dir / classifier->file;
}

json ModelConfig::to_json() const {
  json out = {
      {"format", kFormat},
      {"name", name},
      {"description", description},
      {"input",
       {{"width", input.width},
        {"height", input.height},
        {"channels", input.channels},
        {"resize", to_string(input.resize)},
        {"interpolation", to_string(input.interpolation)},
        {"mean", input.mean},
        {"std", input.std}}},
      {"backbone",
       {{"file", backbone.file},
        {"sha256", backbone.sha256},
        {"architecture", backbone.architecture},
        {"feature_dim", backbone.feature_dim}}},
  };
  // Written only when it is not the default, so entries made before it existed keep their bytes (and
  // version).
  if (input.crop != 1.0) out["input"]["crop"] = input.crop;
  // The engine fields likewise only when set, so entries made before engines existed keep their version.
  if (backbone.onnx)
    out["backbone"]["onnx"] = {{"file", backbone.onnx->file}, {"sha256", backbone.onnx->sha256}};
  if (backbone.engine != Engine::libtorch) out["backbone"]["engine"] = to_string(backbone.engine);
  if (backbone.precision != Precision::f32) out["backbone"]["precision"] = to_string(backbone.precision);
  if (backbone.batch_size > 0) out["backbone"]["batch_size"] = backbone.batch_size;
  if (classifier) {
    out["classifier"] = {{"file", classifier->file},
                         {"sha256", classifier->sha256},
                         {"backbone_sha256", classifier->backbone_sha256}};
    // Like crop: only when not the default, so existing entries keep their bytes.
    if (classifier->kind == ClassifierKind::softmax) out["classifier"]["kind"] = "softmax";
    out["classes"] = classes;
  }
  return out;
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& name) {
  const std::string where = "model.json of " + name;
  if (!j.is_object()) throw ModelError(where + ": not a JSON object");
  if (field<int>(j, "format", where) != kFormat) {
    throw ModelError(where + ": unsupported format " + j.at("format").dump() + " (this build reads format " +
                     std::to_string(kFormat) + ")");
  }
  ModelConfig config;
  config.name = field<std::string>(j, "name", where);
  if (config.name != name) throw ModelError(where + ": its name field says \"" + config.name + "\"");
  config.description = j.value("description", "");

  const json& input = j.contains("input") ? j.at("input") : json();
  const std::string input_where = where + " input";
  config.input.width = field<int>(input, "width", input_where);
  config.input.height = field<int>(input, "height", input_where);
  config.input.channels = field<int>(input, "channels", input_where);
  const auto resize = field<std::string>(input, "resize", input_where);
  const auto interpolation = field<std::string>(input, "interpolation", input_where);
  config.input.mean = field<std::vector<float>>(input, "mean", input_where);
  config.input.std = field<std::vector<float>>(input, "std", input_where);
  if (config.input.width < 1 || config.input.height < 1 || config.input.width > 4096 ||
      config.input.height > 4096) {
    throw ModelError(input_where + ": width and height must be within 1..4096");
  }
  if (config.input.channels != 1 && config.input.channels != 3) {
    throw ModelError(input_where + ": channels must be 1 or 3");
  }
  if (resize == "stretch") {
    config.input.resize = ResizeMode::stretch;
  } else if (resize == "center-crop") {
    config.input.resize = ResizeMode::center_crop;
  } else {
    throw ModelError(input_where + ": resize must be \"stretch\" or \"center-crop\", not \"" + resize + "\"");
  }
  if (interpolation == "area") {
    config.input.interpolation = Interpolation::area;
  } else if (interpolation == "linear") {
    config.input.interpolation = Interpolation::linear;
  } else if (interpolation == "antialiased-linear") {
    config.input.interpolation = Interpolation::antialiased_linear;
  } else {
    throw ModelError(input_where + ": interpolation must be \"area\", \"linear\" or \"antialiased-linear\"");
  }
  config.input.crop = input.contains("crop") ? field<double>(input, "crop", input_where) : 1.0;
  if (!(config.input.crop > 0.0 && config.input.crop <= 1.0)) {
    throw ModelError(input_where + ": crop must be a fraction of the short side, in (0, 1]");
  }
  if (config.input.crop != 1.0 && config.input.resize != ResizeMode::center_crop) {
    throw ModelError(input_where + ": crop applies to resize \"center-crop\" only");
  }
  const auto channels = static_cast<std::size_t>(config.input.channels);
  if (config.input.mean.size() != channels || config.input.std.size() != channels) {
    throw ModelError(input_where + ": mean and std need one value per channel");
  }
  if (std::any_of(config.input.std.begin(), config.input.std.end(), [](float s) { return !(s > 0.0f); })) {
    throw ModelError(input_where + ": std values must be positive");
  }

  const json& backbone = j.contains("backbone") ? j.at("backbone") : json();
  config.backbone.file = field<std::string>(backbone, "file", where + " backbone");
  config.backbone.sha256 = field<std::string>(backbone, "sha256", where + " backbone");
  config.backbone.architecture = backbone.value("architecture", "");
  config.backbone.feature_dim = field<int>(backbone, "feature_dim", where + " backbone");
  if (config.backbone.feature_dim < 1) throw ModelError(where + ": backbone feature_dim must be positive");
  try {
    if (backbone.contains("onnx")) {
      const json& onnx = backbone.at("onnx");
      config.backbone.onnx = EngineFile{field<std::string>(onnx, "file", where + " backbone onnx"),
                                        field<std::string>(onnx, "sha256", where + " backbone onnx")};
    }
    if (backbone.contains("engine")) {
      config.backbone.engine =
          engine_from_string(field<std::string>(backbone, "engine", where + " backbone"));
    }
    if (backbone.contains("precision")) {
      config.backbone.precision =
          precision_from_string(field<std::string>(backbone, "precision", where + " backbone"));
    }
  } catch (const ModelError& error) {
    throw ModelError(where + " backbone: " + error.what());
  }
  if (config.backbone.engine == Engine::openvino && !config.backbone.onnx) {
    throw ModelError(where + ": backbone engine \"openvino\" needs an \"onnx\" file");
  }
  if (backbone.contains("batch_size")) {
    config.backbone.batch_size = field<int>(backbone, "batch_size", where + " backbone");
    if (config.backbone.batch_size < 1)
      throw ModelError(where + ": backbone batch_size must be within 1..4096");
  }
  if (config.backbone.batch_size < 0 || config.backbone.batch_size > 4096) {
    throw ModelError(where + ": backbone batch_size must be within 1..4096");
  }

  if (j.contains("classifier")) {
    const json& classifier = j.at("classifier");
    ClassifierSpec spec;
    spec.file = field<std::string>(classifier, "file", where + " classifier");
    spec.sha256 = field<std::string>(classifier, "sha256", where + " classifier");
    spec.backbone_sha256 = field<std::string>(classifier, "backbone_sha256", where + " classifier");
    const std::string kind = classifier.contains("kind")
                                 ? field<std::string>(classifier, "kind", where + " classifier")
                                 : "linear-svm";
    if (kind == "softmax") {
      spec.kind = ClassifierKind::softmax;
    } else if (kind != "linear-svm") {
      throw ModelError(where + " classifier: kind must be \"linear-svm\" or \"softmax\", not \"" + kind +
                       "\"");
    }
    config.classifier = spec;
    config.classes = field<std::vector<std::string>>(j, "classes", where);
    if (config.classes.size() < 2) throw ModelError(where + ": a classifier needs at least two classes");
  }
  return config;
}

ModelStore::ModelStore(fs::path root, std::size_t kept_versions)
    : root_(std::move(root)), kept_versions_(std::max<std::size_t>(kept_versions, 1)) {}

void ModelStore::throw_not_found(const std::string& name, const fs::path& config_file) const {
  throw ModelError("model \"" + name + "\" not found: no " + config_file.string() +
                   (names().empty() ? " (the model store is empty)" : ""));
}

fs::path ModelStore::dir_of(const std::string& name) const {
  if (!is_valid_model_name(name)) {
    throw ModelError("\"" + name +
                     "\" is not a valid model name (letters, digits, '.', '_', '-'; no leading '.')");
  }
  return root_ / name;
}

std::string ModelStore::current_version(const std::string& name) const {
  const fs::path config_file = dir_of(name) / "model.json";
  if (!fs::is_regular_file(config_file)) throw_not_found(name, config_file);
  return version_of(read_text(config_file));
}

ModelConfig ModelStore::load(const std::string& name) const {
  const fs::path dir = dir_of(name);
  const fs::path config_file = dir / "model.json";
  if (!fs::is_regular_file(config_file)) throw_not_found(name, config_file);
  return load_text(name, dir, read_text(config_file));
}

ModelConfig ModelStore::load_version(const std::string& name, const std::string& version) const {
  const fs::path dir = dir_of(name);
  if (!is_valid_model_version(version)) {
    throw ModelError("\"" + version + "\" is not a model version (12 hex digits of sha256(model.json))");
  }
  const fs::path versions = dir / kVersionsFolder;
  const fs::path kept = versions / version;
  if (fs::is_regular_file(kept / "model.json")) {
    const std::string text = read_text(kept / "model.json");
    if (version_of(text) != version) {
      throw ModelError((kept / "model.json").string() + " is not version " + version + " (it was edited)");
    }
    return load_text(name, kept, text);
  }
  const fs::path config_file = dir / "model.json";
  if (!fs::is_regular_file(config_file)) throw_not_found(name, config_file);
  const std::string text = read_text(config_file);
  const std::string current = version_of(text);
  if (current == version) return load_text(name, dir, text);
  throw ModelError("model " + name + "@" + version + " is no longer in the store: " + name + " is version " +
                   current + " now, and " + versions.string() + " keeps the last " +
                   std::to_string(kept_versions_) +
                   " versions saved, not this one; submit these images again to classify them with " + name +
                   "@" + current);
}

ModelConfig ModelStore::load_text(const std::string& name, const fs::path& dir,
                                  const std::string& text) const {
  const fs::path config_file = dir / "model.json";
  json parsed;
  try {
    parsed = json::parse(text);
  } catch (const json::parse_error& error) {
    throw ModelError(config_file.string() + " is not valid JSON: " + error.what());
  }
  ModelConfig config = ModelConfig::from_json(parsed, name);
  config.dir = dir;
  config.version = version_of(text);
  check_file(dir, config.backbone.file, config.backbone.sha256, "model " + name + ": backbone");
  if (config.backbone.onnx) {
    check_file(dir, config.backbone.onnx->file, config.backbone.onnx->sha256,
               "model " + name + ": ONNX backbone");
  }
  if (config.classifier) {
    check_file(dir, config.classifier->file, config.classifier->sha256, "model " + name + ": classifier");
    if (config.classifier->backbone_sha256 != config.backbone.sha256) {
      throw ModelError("model " + name + ": the classifier was trained on the features of backbone " +
                       config.classifier->backbone_sha256.substr(0, 12) + ", but the model's backbone is " +
                       config.backbone.sha256.substr(0, 12) + "; retrain it with `imgpipe train`");
    }
  }
  return config;
}

std::vector<std::string> ModelStore::names() const {
  std::vector<std::string> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(root_, error)) {
    const std::string name = entry.path().filename().string();
    if (is_valid_model_name(name) && fs::is_regular_file(entry.path() / "model.json")) found.push_back(name);
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::string ModelStore::save(ModelConfig& config) const {
  const fs::path dir = dir_of(config.name);
  fs::create_directories(dir);
  config.dir = dir;
  const std::string text = config.to_json().dump(2) + "\n";
  const std::string version = version_of(text);
  // Both versions are kept before model.json names the new one: a worker that reads the new version from
  // model.json finds it kept, and batches of the old one can still load it after its files are replaced.
  keep_current(config.name);
  keep_version(config.name, text);
  // Write beside and rename, so a reader never sees half a model.json; the name is this writer's own.
  const fs::path temporary = private_name(dir, "model.json", version);
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw ModelError("cannot write " + temporary.string());
  }
  fs::rename(temporary, dir / "model.json");
  config.version = version;
  prune_versions(config.name, version);
  return version;
}

void ModelStore::keep_current(const std::string& name) const {
  const fs::path config_file = dir_of(name) / "model.json";
  if (!fs::is_regular_file(config_file)) return;  // a new model: nothing to keep
  std::string text;
  try {
    text = read_text(config_file);
  } catch (const ModelError&) {
    return;
  }
  keep_version(name, text);
}

void ModelStore::keep_version(const std::string& name, const std::string& text) const {
  const fs::path dir = dir_of(name);
  const std::string version = version_of(text);
  const fs::path versions = dir / kVersionsFolder;
  const fs::path kept = versions / version;
  std::error_code error;
  if (fs::is_regular_file(kept / "model.json")) {
    // Saved again: it becomes the most recent, the last to be removed.
    fs::last_write_time(kept / "model.json", fs::file_time_type::clock::now(), error);
    return;
  }
  ModelConfig config;
  try {
    config = ModelConfig::from_json(json::parse(text), name);
  } catch (const std::exception&) {
    return;  // a model.json that does not load is not worth keeping
  }
  // Files that another kept version has already (same sha256) are hard-linked from there: a new classifier
  // over the same backbone costs the classifier's size. Kept files are never written to after.
  std::map<std::string, fs::path> kept_files;
  for (const std::string& other : kept_versions(name)) {
    try {
      const fs::path other_dir = versions / other;
      const auto other_config =
          ModelConfig::from_json(json::parse(read_text(other_dir / "model.json")), name);
      for (const auto& [file, sha] : files_of(other_config)) {
        if (is_plain_file_name(file)) kept_files.emplace(sha, other_dir / file);
      }
    } catch (const std::exception&) {
      // a kept version being removed, or unreadable: copy instead
    }
  }
  fs::create_directories(versions);
  // Built in a folder of this writer's own and renamed into place whole, so readers and other writers see
  // a kept version complete or not at all.
  const fs::path staging = private_name(versions, "staging", version);
  fs::create_directory(staging);
  struct RemoveOnExit {
    fs::path folder;
    ~RemoveOnExit() {
      std::error_code ignored;
      fs::remove_all(folder, ignored);
    }
  } cleanup{staging};
  for (const auto& [file, sha] : files_of(config)) {
    if (!is_plain_file_name(file)) return;
    // A version is kept only when the model folder holds the files its model.json pins: a file changed
    // behind model.json's back is not kept, and loading this version from the model folder reports it.
    const fs::path source = dir / file;
    const fs::path target = staging / file;
    try {
      if (!fs::is_regular_file(source) || sha256_hex_of_file(source) != sha) return;
      fs::create_directories(target.parent_path());
      bool placed = false;
      if (const auto same = kept_files.find(sha); same != kept_files.end()) {
        fs::create_hard_link(same->second, target, error);
        placed = !error;
      }
      if (!placed) {
        fs::copy_file(source, target, error);
        if (error) return;
      }
      // The copy is what a worker will load: verified again, as the source may change while it is copied.
      if (sha256_hex_of_file(target) != sha) return;
    } catch (const ModelError&) {
      return;
    }
    fs::permissions(target, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read, error);
  }
  {
    std::ofstream out(staging / "model.json", std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return;
  }
  fs::rename(staging, kept, error);  // fails only when another writer kept this version first: fine
}

std::vector<std::string> ModelStore::kept_versions(const std::string& name) const {
  const fs::path versions = dir_of(name) / kVersionsFolder;
  std::vector<std::pair<fs::file_time_type, std::string>> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(versions, error)) {
    const std::string version = entry.path().filename().string();
    if (!is_valid_model_version(version)) continue;
    std::error_code missing;
    const auto saved = fs::last_write_time(entry.path() / "model.json", missing);
    if (!missing) found.emplace_back(saved, version);
  }
  std::sort(found.begin(), found.end(), std::greater<>());
  std::vector<std::string> newest_first;
  for (const auto& [saved, version] : found) newest_first.push_back(version);
  return newest_first;
}

void ModelStore::prune_versions(const std::string& name, const std::string& current) const {
  const fs::path versions = dir_of(name) / kVersionsFolder;
  std::size_t kept = 0;
  for (const std::string& version : kept_versions(name)) {
    if (version == current || kept < kept_versions_) {
      ++kept;
      continue;
    }
    remove_folder(versions / version, versions, version);
  }
  // What a writer that died mid-way left behind.
  std::error_code error;
  const auto old = fs::file_time_type::clock::now() - kLeftoverAge;
  for (const auto& entry : fs::directory_iterator(versions, error)) {
    const std::string file = entry.path().filename().string();
    std::error_code gone;
    if (file.front() == '.' && fs::last_write_time(entry.path(), gone) < old && !gone) {
      fs::remove_all(entry.path(), gone);
    }
  }
}

}  // namespace imgpipe
