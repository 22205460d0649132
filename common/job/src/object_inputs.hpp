// A job's inputs in object storage: s3://bucket/prefix/ listed like a folder, s3://bucket/key taken as
// named (inputs.hpp has the rules; read_object_input, declared there, is in object_inputs.cpp too).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "imgpipe/messages/batch.hpp"
#include "imgpipe/storage/s3_client.hpp"

namespace imgpipe {

struct ObjectArgument {
  std::vector<std::pair<std::string, ObjectRef>> images;  // s3://bucket/key and its reference, in key order
  std::vector<std::string> not_images;                    // listed keys without an image's extension
};

// Throws UsageError for a malformed URI, S3Error when the listing fails.
ObjectArgument expand_object_argument(const std::string& argument, const S3Client& objects);

}  // namespace imgpipe
