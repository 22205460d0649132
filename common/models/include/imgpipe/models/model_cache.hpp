// Loads what a stage needs from the model store once per model version and keeps the last few versions of
// each model loaded, so a batch stamped with a version that has since been replaced on disk still runs on
// that version (and a new batch on the new one); a batch never mixes two versions.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "imgpipe/models/model_store.hpp"

namespace imgpipe {

// Told about every model version a cache loads and how long it took (for the worker's metrics and log).
using ModelLoadObserver = std::function<void(const ModelConfig& config, std::chrono::duration<double> took)>;

// Versions of one model a stage keeps loaded (--model-versions): the current one and the last ones replaced.
inline constexpr std::size_t kDefaultLoadedVersions = 3;

template <typename Loaded>
class ModelCache {
 public:
  using Loader = std::function<std::shared_ptr<const Loaded>(const ModelConfig&)>;
  struct Entry {
    std::shared_ptr<const ModelConfig> config;
    std::shared_ptr<const Loaded> loaded;
  };

  ModelCache(ModelStore store, Loader loader, ModelLoadObserver on_load = {},
             std::size_t versions = kDefaultLoadedVersions)
      : store_(std::move(store)),
        loader_(std::move(loader)),
        on_load_(std::move(on_load)),
        capacity_(std::max<std::size_t>(versions, 1)) {}

  // The model as it is on disk now (for a batch no stage has stamped yet). Throws ModelError when it cannot
  // be loaded.
  Entry get(const std::string& name) { return get(name, store_.current_version(name)); }

  // Exactly this version of the model: loaded already, or loaded now from the store (ModelStore::
  // load_version: kept versions included). The least recently used version of the model is dropped when
  // more than `versions` are loaded; a batch still running on it keeps it alive until it ends. Throws
  // ModelError when the version is neither loaded nor in the store.
  Entry get(const std::string& name, const std::string& version) {
    std::lock_guard lock(mutex_);
    auto model = entries_.find(name);
    if (model != entries_.end()) {
      auto& versions = model->second;  // most recently used first
      for (auto entry = versions.begin(); entry != versions.end(); ++entry) {
        if (entry->config->version != version) continue;
        versions.splice(versions.begin(), versions, entry);
        return versions.front();
      }
    }
    const auto started = std::chrono::steady_clock::now();
    auto config = std::make_shared<const ModelConfig>(store_.load_version(name, version));
    Entry entry{config, loader_(*config)};
    if (on_load_) on_load_(*config, std::chrono::steady_clock::now() - started);
    // Only a model that loaded gets a place: names from messages never grow the map.
    auto& versions = entries_[name];
    versions.push_front(entry);
    while (versions.size() > capacity_) versions.pop_back();
    return entry;
  }

  // The versions of `name` loaded now, the most recently used first.
  std::vector<std::string> loaded_versions(const std::string& name) const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> versions;
    if (const auto model = entries_.find(name); model != entries_.end()) {
      for (const auto& entry : model->second) versions.push_back(entry.config->version);
    }
    return versions;
  }

  const ModelStore& store() const { return store_; }

 private:
  ModelStore store_;
  Loader loader_;
  ModelLoadObserver on_load_;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::map<std::string, std::list<Entry>> entries_;
};

// The loader for stages that need only the config itself.
inline std::shared_ptr<const ModelConfig> keep_config(const ModelConfig& config) {
  return std::make_shared<const ModelConfig>(config);
}

}  // namespace imgpipe
