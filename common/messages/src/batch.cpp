#include "imgpipe/messages/batch.hpp"

namespace imgpipe {

BatchKind kind_of(const Batch& batch) {
  return static_cast<BatchKind>(batch.index() + 1);
}

const JobRef& job_of(const Batch& batch) {
  return std::visit([](const auto& b) -> const JobRef& { return b.job; }, batch);
}

std::size_t item_count(const Batch& batch) {
  struct Count {
    std::size_t operator()(const ImageBatch& b) const { return b.images.size(); }
    std::size_t operator()(const PixelBatch& b) const { return b.images.size(); }
    std::size_t operator()(const FeatureBatch& b) const { return b.features.size(); }
    std::size_t operator()(const ResultBatch& b) const { return b.results.size(); }
  };
  return std::visit(Count{}, batch);
}

const char* to_string(BatchKind kind) {
  switch (kind) {
    case BatchKind::images:
      return "images";
    case BatchKind::pixels:
      return "pixels";
    case BatchKind::features:
      return "features";
    case BatchKind::results:
      return "results";
  }
  return "unknown";
}

}  // namespace imgpipe
