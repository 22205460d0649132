// The model store: one folder per model, <root>/<name>/model.json beside the files it names.
// model.json pins each file by sha256 and ties the classifier to the backbone it was trained on.
// <root>/<name>/versions/<version>/ keeps the last versions saved (model.json and verified copies of its
// files, identical files hard-linked between versions), so a batch stamped with a version that has since
// been replaced on disk can still be run on that version by a worker that has not loaded it yet.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace imgpipe {

// A model that cannot be used as asked: missing, malformed, tampered or mismatched. what() says which.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ResizeMode { stretch, center_crop };  // stretch to WxH, or scale the short side then crop
// area and linear: OpenCV's INTER_AREA and INTER_LINEAR. antialiased_linear: what torchvision's Resize does
// to a PIL image (PIL's bilinear filter widened when shrinking), for models trained that way; with
// center-crop it also follows torchvision's Resize(short side) + CenterCrop rounding.
enum class Interpolation { area, linear, antialiased_linear };

struct InputSpec {
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 (grey) or 3 (RGB)
  ResizeMode resize = ResizeMode::stretch;
  Interpolation interpolation = Interpolation::area;
  std::vector<float> mean;  // per channel, applied to pixel/255
  std::vector<float> std;
  // center-crop only: the part of the short side kept around the centre. torchvision's usual
  // Resize(256) + CenterCrop(224) is 224/256 = 0.875; 1 keeps the whole short side.
  double crop = 1.0;
};

// What runs the backbone's forward pass. libtorch runs the TorchScript file (the format users bring, and the
// reference); openvino runs the same network exported to ONNX (scripts/export-onnx), several times faster on
// CPUs for networks built of depthwise convolutions.
enum class Engine { libtorch, openvino };
// The arithmetic of the forward pass. bf16 only where asked for (model.json or the worker's --precision):
// it moves features by about 0.1 and can change a label.
enum class Precision { f32, bf16 };

const char* to_string(Engine engine);
const char* to_string(Precision precision);
Engine engine_from_string(const std::string& text);        // throws ModelError naming the choices
Precision precision_from_string(const std::string& text);  // throws ModelError naming the choices

// A second file of the same network, for an engine other than LibTorch.
struct EngineFile {
  std::string file;  // relative to the model folder
  std::string sha256;
};

struct BackboneSpec {
  std::string file;  // the TorchScript file, relative to the model folder
  std::string sha256;
  std::string architecture;  // free text, e.g. "fashion-cnn" or "resnet50"
  int feature_dim = 0;
  std::optional<EngineFile> onnx;  // the network exported to ONNX; what the openvino engine reads
  Engine engine = Engine::libtorch;
  Precision precision = Precision::f32;
  // Images per forward pass, measured fastest for this network and engine (bench/run); 0 = not measured.
  int batch_size = 0;
};

// What the classifier file holds.
enum class ClassifierKind {
  linear_svm,  // a dlib multiclass linear SVM with its feature normaliser (what `imgpipe train` makes)
  softmax,     // a network's own linear head: float32 weights (classes x feature_dim, row-major), then biases
};

struct ClassifierSpec {
  std::string file;
  std::string sha256;
  std::string backbone_sha256;  // the backbone whose features it was trained on
  ClassifierKind kind = ClassifierKind::linear_svm;
};

struct ModelConfig {
  std::string name;
  std::string version;  // first 12 hex digits of sha256(model.json); set when loaded from or saved to disk
  std::filesystem::path dir;
  std::string description;
  InputSpec input;
  BackboneSpec backbone;
  std::optional<ClassifierSpec> classifier;  // absent for a backbone-only entry (input to `imgpipe train`)
  std::vector<std::string> classes;

  std::filesystem::path backbone_path() const { return dir / backbone.file; }
  std::filesystem::path onnx_path() const;        // throws ModelError when the model has no ONNX file
  std::filesystem::path classifier_path() const;  // throws ModelError when there is no classifier
  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& json, const std::string& name);  // throws ModelError
};

// Versions of one model the store keeps in <root>/<name>/versions/, the current one included.
inline constexpr std::size_t kDefaultKeptVersions = 5;

class ModelStore {
 public:
  explicit ModelStore(std::filesystem::path root, std::size_t kept_versions = kDefaultKeptVersions);

  const std::filesystem::path& root() const { return root_; }
  // Reads and validates <root>/<name>/model.json and checks every file against its sha256.
  ModelConfig load(const std::string& name) const;
  // Exactly `version` of the model, checked like load(): from versions/<version>/ when the store kept it,
  // else from the model folder when its model.json is that version. Throws ModelError when it is neither
  // (replaced and no longer kept), naming the current version.
  ModelConfig load_version(const std::string& name, const std::string& version) const;
  // Cheap check of whether model.json changed since `version` (no file hashing).
  std::string current_version(const std::string& name) const;
  std::vector<std::string> names() const;
  // Writes <root>/<config.name>/model.json (files must already be in place); returns the new version.
  // Before model.json changes, the version it replaces (if its files still verify) and the new version (if
  // its files verify) are copied into versions/, and versions beyond the newest `kept_versions` are removed
  // from there. Safe with several writers and any number of readers: every folder appears by a rename.
  std::string save(ModelConfig& config) const;
  // Keeps the version model.json names now in versions/, if its files verify. Call it before overwriting a
  // model's files in place (imgpipe train does), so batches of that version can still run after.
  void keep_current(const std::string& name) const;
  // The versions kept in <root>/<name>/versions/, the most recently saved first.
  std::vector<std::string> kept_versions(const std::string& name) const;
  std::size_t versions_kept() const { return kept_versions_; }
  std::filesystem::path dir_of(const std::string& name) const;  // validates the name; confined to root

 private:
  [[noreturn]] void throw_not_found(const std::string& name, const std::filesystem::path& config_file) const;
  ModelConfig load_text(const std::string& name, const std::filesystem::path& dir,
                        const std::string& text) const;
  void keep_version(const std::string& name, const std::string& text) const;
  void prune_versions(const std::string& name, const std::string& current) const;
  std::filesystem::path root_;
  std::size_t kept_versions_;
};

// A version is the first 12 hex digits of sha256(model.json); anything else (from a message) is refused.
bool is_valid_model_version(const std::string& version);

// Names are confined to [A-Za-z0-9._-], not starting with '.', so a name can never leave the store.
bool is_valid_model_name(const std::string& name);
std::string sha256_hex_of_file(const std::filesystem::path& file);
std::string sha256_hex(const void* data, std::size_t size);

// The store used when neither --models nor IMGPIPE_MODELS names one: compiled in (the source tree's models/;
// containers set IMGPIPE_MODELS).
std::string default_model_dir();

}  // namespace imgpipe
