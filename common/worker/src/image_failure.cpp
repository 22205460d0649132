#include "imgpipe/worker/image_failure.hpp"

#include "imgpipe/pipeline/stage_graph.hpp"

namespace imgpipe {
namespace {

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

ImageFailure classify_failure(std::string_view stage, std::string_view error) {
  // Only the stage that takes the encoded files reads them; what fails later fails in the model. The texts
  // are those of check_before_decoding and decode_and_fit (stages/src/preprocess.cpp).
  const StageSpec* spec = find_stage(stage);
  if (spec == nullptr || spec->input != BatchKind::images) return ImageFailure::model_error;
  if (contains(error, "empty file")) return ImageFailure::empty_file;
  if (contains(error, "not a supported image")) return ImageFailure::not_an_image;
  if (contains(error, "over the limit")) return ImageFailure::too_large;
  // A fetch of an object reference that failed: its text starts with the object's URI
  // (storage/s3_error.hpp).
  if (error.starts_with("s3://")) return ImageFailure::object_storage;
  if (contains(error, "truncated")) return ImageFailure::truncated;
  if (contains(error, "not supported") || contains(error, "channels"))
    return ImageFailure::unsupported_format;
  // Preprocess loads the model's input geometry too; the store's errors name the model or its files.
  if (contains(error, "model")) return ImageFailure::model_error;
  return ImageFailure::other;
}

}  // namespace imgpipe
