// What the workers' metrics derive from a message: the reason class of a failure, the publish time header.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <iostream>
#include <sstream>

#include "imgpipe/messages/protocol.hpp"
#include "imgpipe/ops/logging.hpp"
#include "imgpipe/ops/metrics.hpp"
#include "imgpipe/worker/image_failure.hpp"

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
  CHECK(classify_failure("preprocess",
                         "s3://photos/a.jpg: 404 NoSuchKey (The specified key does not exist.)") ==
        ImageFailure::object_storage);
  CHECK(classify_failure("preprocess", "s3://photos/a.jpg: object of 9 bytes is over the limit of 8 bytes") ==
        ImageFailure::too_large);
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

namespace {
// What a Logger writes to stderr during `log`, which is given the logger.
template <typename Body>
std::string captured_stderr(Body body) {
  std::ostringstream captured;
  auto* const original = std::cerr.rdbuf(captured.rdbuf());
  try {
    body();
  } catch (...) {
    std::cerr.rdbuf(original);
    throw;
  }
  std::cerr.rdbuf(original);
  return captured.str();
}
}  // namespace

TEST_CASE("a JSON log line is one object with the job and image as fields", "[unit][metrics]") {
  const Logger log("preprocess", false, LogFormat::json);
  const std::string line = captured_stderr([&] {
    log.event("info", "failed in preprocess: empty file", {{"job", "j1"}, {"image", "000003"}});
  });
  REQUIRE(line.back() == '\n');
  const auto parsed = nlohmann::json::parse(line);
  CHECK(parsed["level"] == "info");
  CHECK(parsed["component"] == "preprocess");
  CHECK(parsed["msg"] == "failed in preprocess: empty file");
  CHECK(parsed["job"] == "j1");
  CHECK(parsed["image"] == "000003");
  CHECK(parsed["ts"].get<std::string>().ends_with("Z"));
  // An id that is not UTF-8 still gives a parseable line.
  const std::string odd = captured_stderr([&] { log.event("warn", "x", {{"image", "caf\xe9"}}); });
  CHECK(nlohmann::json::parse(odd)["image"].is_string());
  // Debug lines stay off unless verbose, in either format.
  CHECK(captured_stderr([&] { log.debug("hidden"); }).empty());
}

TEST_CASE("a text log line puts the fields before the message, as the workers always wrote it",
          "[unit][metrics]") {
  const Logger log("classify");
  const std::string line = captured_stderr([&] {
    log.event("info", "failed in classify: bad", {{"job", "j1"}, {"image", "7"}});
  });
  CHECK_THAT(line, Catch::EndsWith(" info classify: job j1 image 7 failed in classify: bad\n"));
}
