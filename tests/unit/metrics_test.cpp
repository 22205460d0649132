// What the workers' metrics derive from a message: the reason class of a failure, the publish time header.
#include <catch2/catch.hpp>

#include "imgpipe/metrics.hpp"
#include "imgpipe/stage_worker.hpp"

using namespace imgpipe;

TEST_CASE("a preprocess failure is classed by its reason, never by its file name", "[unit][metrics]") {
  CHECK(classify_failure("preprocess", "empty file (0 bytes)") == ImageFailure::empty_file);
  CHECK(classify_failure("preprocess", "not a supported image (first bytes 6a 75 73)") ==
        ImageFailure::not_an_image);
  CHECK(classify_failure("preprocess", "truncated JPEG (no end-of-image marker)") == ImageFailure::truncated);
  CHECK(classify_failure("preprocess", "corrupt or truncated png (decoder returned nothing)") ==
        ImageFailure::truncated);
  CHECK(classify_failure("preprocess",
                         "png header claims 100000x100000 pixels, over the limit of 100000000 "
                         "pixels or 30000 per side (refused before decoding)") == ImageFailure::too_large);
  CHECK(classify_failure("preprocess", "GIF images are not supported (OpenCV 4.6 has no GIF decoder)") ==
        ImageFailure::unsupported_format);
  CHECK(classify_failure("preprocess", "cannot read /models/nope/model.json") == ImageFailure::model_error);
  CHECK(classify_failure("preprocess", "decoder refused the image: boom") == ImageFailure::other);
  // Feature and classify fail an image only over its model (a missing backbone, a dimension mismatch).
  CHECK(classify_failure("feature", "cannot load the TorchScript backbone x.pt: y") ==
        ImageFailure::model_error);
  CHECK(classify_failure("classify", "feature vector has 3 values") == ImageFailure::model_error);
  CHECK(std::string(to_string(ImageFailure::not_an_image)) == "not_an_image");
}

TEST_CASE("the publish time header round-trips, and a missing or garbled one is no time at all",
          "[unit][metrics]") {
  Headers tags;
  const auto now = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'795'000'000'123));
  stamp_published(tags, now);
  CHECK(tags.at(headers::published_ms) == "1795000000123");
  CHECK(published_at(tags) == now);
  CHECK(!published_at({}));
  CHECK(!published_at({{headers::published_ms, "soon"}}));
  CHECK(!published_at({{headers::published_ms, "12abc"}}));
  CHECK(!published_at({{headers::published_ms, "-5"}}));
  CHECK(!published_at({{headers::published_ms, ""}}));
}
