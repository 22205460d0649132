#include "object_inputs.hpp"

#include "imgpipe/job/inputs.hpp"
#include "imgpipe/storage/s3_uri.hpp"

namespace imgpipe {

ObjectArgument expand_object_argument(const std::string& argument, const S3Client& objects) {
  S3Uri uri;
  try {
    uri = parse_s3_uri(argument);
  } catch (const std::invalid_argument& error) {
    throw UsageError(error.what());
  }
  ObjectArgument out;
  if (!uri.key.empty() && !uri.key.ends_with('/')) {
    // One object, taken whatever its name; its ETag is asked for when the job reads it.
    out.images.emplace_back(argument, ObjectRef{uri.bucket, uri.key, "", 0});
    return out;
  }
  objects.list_objects(uri.bucket, uri.key, [&](std::vector<ListedObject>&& page) {
    for (auto& listed : page) {
      if (listed.key.ends_with('/')) continue;  // a "folder" marker some tools create
      std::string name = s3_uri(uri.bucket, listed.key);
      if (has_image_extension(listed.key)) {
        out.images.emplace_back(std::move(name), ObjectRef{uri.bucket, std::move(listed.key),
                                                           std::move(listed.etag), listed.size});
      } else {
        out.not_images.push_back(std::move(name));
      }
    }
  });
  return out;
}

ReadOutcome read_object_input(const JobInput& input, std::size_t max_file_bytes, const S3Client* objects) {
  auto fail = [&](const std::string& reason) {
    return ReadOutcome{std::nullopt, ImageResult{input.image_id, "", 0.0, reason}};
  };
  ObjectRef object = *input.object;
  if (object.etag.empty()) {
    if (objects == nullptr) return fail(input.path.string() + ": no object storage to ask for it");
    try {
      const ListedObject found = objects->head_object(object.bucket, object.key);
      object.etag = found.etag;
      object.size = found.size;
    } catch (const std::runtime_error& error) {
      return fail(error.what());
    }
  }
  if (object.size > max_file_bytes) {
    return fail(input.path.string() + ": object of " + std::to_string(object.size) +
                " bytes is over the limit of " + std::to_string(max_file_bytes) + " bytes");
  }
  return {EncodedImage{input.image_id, {}, std::move(object)}, std::nullopt};
}

}  // namespace imgpipe
