#include "imgpipe/stages/preprocess.hpp"

#include <opencv2/core.hpp>

#include "imgpipe/stages/model_for_batch.hpp"
#include "imgpipe/storage/s3_error.hpp"
#include "imgpipe/storage/s3_uri.hpp"
#include "object_prefetch.hpp"

namespace imgpipe {
namespace {
// Objects fetched at once per batch (the one being decoded included).
constexpr std::size_t kFetchWindow = 4;
}  // namespace

PreprocessStage::PreprocessStage(ModelStore store, DecodeLimits limits, ModelLoadObserver on_load,
                                 std::shared_ptr<const S3Client> objects, std::size_t loaded_versions)
    : configs_(std::move(store), keep_config, std::move(on_load), loaded_versions),
      limits_(limits),
      objects_(std::move(objects)) {}

std::vector<std::uint8_t> PreprocessStage::fetch(const ObjectRef& object) const {
  if (!objects_) {
    throw S3Error(s3_uri(object.bucket, object.key) + ": this worker has no object storage client", 0, "");
  }
  return objects_->fetch(object, limits_.max_file_bytes);
}

StageOutput PreprocessStage::process(const Batch& in) {
  const ImageBatch& batch = batch_taken_by<ImageBatch>(*this, in);
  StageOutput output;
  const auto loaded = model_for_batch(configs_, batch.job, batch.images, output);
  if (!loaded) return output;
  const auto& model = *loaded;
  PixelBatch next{batch.job, {}};
  next.job.model_version = model.config->version;
  ObjectPrefetch objects(
      batch.images, [this](const ObjectRef& object) { return fetch(object); }, kFetchWindow);
  for (std::size_t i = 0; i < batch.images.size(); ++i) {
    const EncodedImage& image = batch.images[i];
    try {
      if (image.object) {
        // The fetched bytes live only while this image is decoded.
        const std::vector<std::uint8_t> bytes = objects.take(i);
        next.images.push_back(decode_and_fit(image.image_id, bytes, model.config->input, limits_));
      } else {
        next.images.push_back(decode_and_fit(image.image_id, image.bytes, model.config->input, limits_));
      }
    } catch (const S3Error& error) {
      output.errors.push_back({image.image_id, "", 0.0, error.what()});
    } catch (const ImageError& error) {
      output.errors.push_back({image.image_id, "", 0.0, error.what()});
    } catch (const cv::Exception& error) {
      output.errors.push_back(
          {image.image_id, "", 0.0, std::string("image processing failed: ") + error.err});
    }
  }
  if (!next.images.empty()) output.next = std::move(next);
  return output;
}

}  // namespace imgpipe
