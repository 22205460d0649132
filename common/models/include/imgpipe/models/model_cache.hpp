// Loads what a stage needs from the model store once per model version, and notices when model.json
// changes on disk (a new version is loaded for the next batch; a batch never mixes two versions).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "imgpipe/models/model_store.hpp"

namespace imgpipe {

// Told about every model version a cache loads and how long it took (for the worker's metrics and log).
using ModelLoadObserver = std::function<void(const ModelConfig& config, std::chrono::duration<double> took)>;

template <typename Loaded>
class ModelCache {
 public:
  using Loader = std::function<std::shared_ptr<const Loaded>(const ModelConfig&)>;
  struct Entry {
    std::shared_ptr<const ModelConfig> config;
    std::shared_ptr<const Loaded> loaded;
  };

  ModelCache(ModelStore store, Loader loader, ModelLoadObserver on_load = {})
      : store_(std::move(store)), loader_(std::move(loader)), on_load_(std::move(on_load)) {}

  // The model as it is on disk now. Throws ModelError when it cannot be loaded.
  Entry get(const std::string& name) {
    std::lock_guard lock(mutex_);
    const std::string version = store_.current_version(name);
    auto found = entries_.find(name);
    if (found != entries_.end() && found->second.config->version == version) return found->second;
    const auto started = std::chrono::steady_clock::now();
    auto config = std::make_shared<const ModelConfig>(store_.load(name));
    Entry entry{config, loader_(*config)};
    if (on_load_) on_load_(*config, std::chrono::steady_clock::now() - started);
    entries_[name] = entry;
    return entry;
  }

  const ModelStore& store() const { return store_; }

 private:
  ModelStore store_;
  Loader loader_;
  ModelLoadObserver on_load_;
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

// The loader for stages that need only the config itself.
inline std::shared_ptr<const ModelConfig> keep_config(const ModelConfig& config) {
  return std::make_shared<const ModelConfig>(config);
}

}  // namespace imgpipe
