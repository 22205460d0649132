#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <limits>

#include "imgpipe/messages/codec.hpp"

using namespace imgpipe;

namespace {
JobRef sample_job() {
  return {"job-1", "imgpipe.results.job-1", "fashion", "0123456789ab"};
}

std::vector<std::uint8_t> header_bytes_with(std::vector<std::uint8_t> message, const std::string& from,
                                            const std::string& to) {
  // Rewrites text inside the JSON header, keeping the length fields consistent.
  const std::uint32_t header_size =
      message[8] | (message[9] << 8) | (message[10] << 16) | (message[11] << 24);
  std::string header(message.begin() + 12, message.begin() + 12 + header_size);
  const auto at = header.find(from);
  REQUIRE(at != std::string::npos);
  header.replace(at, from.size(), to);
  std::vector<std::uint8_t> out(message.begin(), message.begin() + 8);
  const auto size = static_cast<std::uint32_t>(header.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(size >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), message.begin() + 12 + header_size, message.end());
  return out;
}
}  // namespace

TEST_CASE("every batch kind survives an encode/decode round trip unchanged", "[codec]") {
  const ImageBatch images{sample_job(), {{"000001", {0xFF, 0xD8, 0xFF, 1, 2, 3}}, {"000002", {}}}};
  const PixelBatch pixels{sample_job(),
                          {{"000001", 2, 3, 1, {1, 2, 3, 4, 5, 6}}, {"000002", 1, 1, 3, {7, 8, 9}}}};
  const FeatureBatch features{sample_job(), {{"000001", {0.5f, -1.25f, 3e-8f}}, {"000002", {42.0f}}}};
  const ResultBatch results{sample_job(),
                            "classify",
                            {{"000001", "Sneaker", 1.75, ""}, {"000002", "", 0.0, "empty file (0 bytes)"}}};
  for (const Batch& batch : {Batch(images), Batch(pixels), Batch(features), Batch(results)}) {
    CAPTURE(to_string(kind_of(batch)));
    CHECK(decode(encode(batch)) == batch);
  }
}

TEST_CASE("the wire form starts with magic, schema version and kind", "[codec]") {
  const auto bytes = encode(PixelBatch{sample_job(), {}});
  REQUIRE(bytes.size() > 12);
  CHECK(std::memcmp(bytes.data(), "IMGP", 4) == 0);
  CHECK((bytes[4] | (bytes[5] << 8)) == kSchemaVersion);
  CHECK(bytes[6] == static_cast<std::uint8_t>(BatchKind::pixels));
}

TEST_CASE("malformed messages are rejected with a reason", "[codec]") {
  const auto good = encode(PixelBatch{sample_job(), {{"a", 2, 2, 1, {1, 2, 3, 4}}}});

  SECTION("empty and short input") {
    CHECK_THROWS_WITH(decode({}), Catch::Contains("too short"));
    CHECK_THROWS_WITH(decode(std::span(good).first(10)), Catch::Contains("too short"));
  }
  SECTION("wrong magic") {
    auto bad = good;
    bad[0] = 'X';
    CHECK_THROWS_WITH(decode(bad), Catch::Contains("magic"));
  }
  SECTION("unknown schema version") {
    auto bad = good;
    bad[4] = 99;
    CHECK_THROWS_WITH(decode(bad), Catch::Contains("unsupported schema version 99"));
  }
  SECTION("unknown kind") {
    auto bad = good;
    bad[6] = 77;
    CHECK_THROWS_WITH(decode(bad), Catch::Contains("unknown batch kind 77"));
  }
  SECTION("truncated payload") {
    auto bad = good;
    bad.pop_back();
    CHECK_THROWS_WITH(decode(bad), Catch::Contains("payload length"));
  }
  SECTION("trailing garbage") {
    auto bad = good;
    bad.push_back(0);
    CHECK_THROWS_WITH(decode(bad), Catch::Contains("payload length"));
  }
  SECTION("header length beyond the message") {
    auto bad = good;
    bad[11] = 0x7F;
    CHECK_THROWS_WITH(decode(bad), Catch::Contains("header length"));
  }
  SECTION("header that is not JSON") {
    auto bad = header_bytes_with(good, "{", "[");
    CHECK_THROWS_AS(decode(bad), MessageError);
  }
  SECTION("tensor size that does not match its header") {
    CHECK_THROWS_WITH(decode(header_bytes_with(good, "\"width\":2", "\"width\":3")),
                      Catch::Contains("tensor has 4 bytes but its header says 3x2x1"));
  }
  SECTION("item pointing outside the payload") {
    CHECK_THROWS_WITH(decode(header_bytes_with(good, "\"offset\":0", "\"offset\":9")),
                      Catch::Contains("outside the payload"));
  }
  SECTION("absurd dimensions") {
    CHECK_THROWS_WITH(decode(header_bytes_with(good, "\"width\":2", "\"width\":2000000")),
                      Catch::Contains("outside 1.."));
  }
  SECTION("missing job id") {
    CHECK_THROWS_WITH(decode(header_bytes_with(good, "\"job_id\":\"job-1\"", "\"job_id\":\"\"")),
                      Catch::Contains("job_id is empty"));
  }
  SECTION("message over the size limit") {
    CodecLimits limits;
    limits.max_message_bytes = 16;
    CHECK_THROWS_WITH(decode(good, limits), Catch::Contains("over the limit"));
  }
}

TEST_CASE("a feature tensor whose byte count disagrees with dim is rejected", "[codec]") {
  const auto good = encode(FeatureBatch{sample_job(), {{"a", {1.0f, 2.0f}}}});
  CHECK_THROWS_WITH(decode(header_bytes_with(good, "\"dim\":2", "\"dim\":3")),
                    Catch::Contains("says 3 floats"));
}

// Found by fuzz/decode_message: a NaN feature decoded, then failed to equal its own re-encoded copy.
// Regression inputs: fuzz/corpus/decode_message/regression-*.
TEST_CASE("feature values that are not finite numbers are rejected", "[codec]") {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    const auto message = encode(FeatureBatch{sample_job(), {{"a", {1.0f, bad}}}});
    CHECK_THROWS_WITH(decode(message), Catch::Contains("item 0 feature value 1 is not a finite number"));
  }
}

TEST_CASE("a job's top_k and each result's best labels survive the round trip", "[codec][top-k]") {
  JobRef job = sample_job();
  job.top_k = 3;
  const ResultBatch results{job,
                            "classify",
                            {{"000001",
                              "fox squirrel",
                              0.9375,
                              "",
                              {{"fox squirrel", 0.9375}, {"marmot", 0.03125}, {"red fox", 0.0078125}}},
                             {"000002", "", 0.0, "empty file (0 bytes)"}}};
  const Batch decoded = decode(encode(results));
  CHECK(decoded == Batch(results));
  CHECK(std::get<ResultBatch>(decoded).results[0].top.size() == 3);
  // Every stage carries the job's top_k on to the classifier.
  for (const Batch& batch : {Batch(ImageBatch{job, {{"000001", {1, 2, 3}}}}),
                             Batch(PixelBatch{job, {{"000001", 1, 1, 3, {7, 8, 9}}}}),
                             Batch(FeatureBatch{job, {{"000001", {0.5f}}}})}) {
    CHECK(job_of(decode(encode(batch))).top_k == 3);
  }
}

TEST_CASE("a header without top_k means one label, as messages written before it existed", "[codec][top-k]") {
  const auto message = encode(ImageBatch{sample_job(), {{"000001", {1, 2, 3}}}});
  const std::string text(message.begin(), message.end());
  CHECK(text.find("top_k") == std::string::npos);  // the default is not written
  CHECK(job_of(decode(message)).top_k == 1);
  // An explicit 1 reads the same.
  CHECK(job_of(decode(header_bytes_with(message, "\"job_id\"", "\"top_k\":1,\"job_id\""))).top_k == 1);
}

TEST_CASE("top_k outside 1..1000 and malformed top entries are refused with the reason", "[codec][top-k]") {
  JobRef job = sample_job();
  job.top_k = 2;
  const auto images = encode(ImageBatch{job, {{"000001", {1, 2, 3}}}});
  SECTION("top_k out of range or not an integer") {
    CHECK_THROWS_WITH(decode(header_bytes_with(images, "\"top_k\":2", "\"top_k\":0")),
                      Catch::Contains("job.top_k is 0, outside 1..1000"));
    CHECK_THROWS_WITH(decode(header_bytes_with(images, "\"top_k\":2", "\"top_k\":1001")),
                      Catch::Contains("job.top_k is 1001, outside 1..1000"));
    CHECK_THROWS_WITH(decode(header_bytes_with(images, "\"top_k\":2", "\"top_k\":-5")),
                      Catch::Contains("job.top_k is -5"));
    CHECK_THROWS_WITH(decode(header_bytes_with(images, "\"top_k\":2", "\"top_k\":\"2\"")),
                      Catch::Contains("job field \"top_k\" is not an integer"));
    CHECK_THROWS_WITH(decode(header_bytes_with(images, "\"top_k\":2", "\"top_k\":2.5")),
                      Catch::Contains("job field \"top_k\" is not an integer"));
    CHECK(job_of(decode(header_bytes_with(images, "\"top_k\":2", "\"top_k\":1000"))).top_k == 1000);
  }
  const auto results = encode(
      ResultBatch{job, "classify", {{"000001", "baboon", 0.5, "", {{"baboon", 0.5}, {"mandrill", 0.25}}}}});
  const std::string top = "\"top\":[[\"baboon\",0.5],[\"mandrill\",0.25]]";
  SECTION("a top that is not an array of [label, score]") {
    for (const std::string bad :
         {"\"top\":\"baboon\"", "\"top\":[[\"baboon\"]]", "\"top\":[[\"baboon\",0.5,1]]",
          "\"top\":[[0.5,\"baboon\"]]", "\"top\":[[\"baboon\",\"0.5\"]]",
          "\"top\":[{\"label\":\"baboon\",\"score\":0.5}]", "\"top\":[[\"baboon\",null]]"}) {
      CAPTURE(bad);
      CHECK_THROWS_WITH(decode(header_bytes_with(results, top, bad)), Catch::Contains("item 0 top"));
    }
  }
  SECTION("more than 1000 entries") {
    std::string many = "\"top\":[";
    for (int i = 0; i <= kMaxTopK; ++i) many += std::string(i ? "," : "") + "[\"x\",0]";
    many += "]";
    CHECK_THROWS_WITH(decode(header_bytes_with(results, top, many)),
                      Catch::Contains("item 0 top is not an array of at most 1000 entries"));
  }
}

TEST_CASE("an images batch mixing bytes and object references survives the round trip", "[codec][storage]") {
  const ImageBatch batch{
      sample_job(),
      {{"000001", {0xFF, 0xD8, 0xFF}},
       {"000002", {}, ObjectRef{"photos", "2026/a b+c/日本.jpg", "\"9b2cf535f2\"", 4000123}},
       {"000003", {1, 2}}}};
  const auto message = encode(batch);
  CHECK(decode(message) == Batch{batch});
  // The reference travels in the header alone: the payload holds the two files' five bytes.
  const std::size_t payload_length_at = message.size() - 5 - 8;
  CHECK(message[payload_length_at] == 5);
  CHECK(std::all_of(message.begin() + static_cast<std::ptrdiff_t>(payload_length_at) + 1, message.end() - 5,
                    [](std::uint8_t byte) { return byte == 0; }));
}

TEST_CASE("a malformed object reference is rejected with the item's position", "[codec][storage]") {
  const auto good = encode(ImageBatch{sample_job(), {{"a", {}, ObjectRef{"bucket", "k.jpg", "\"e\"", 7}}}});
  CHECK_THROWS_WITH(decode(header_bytes_with(good, "\"size\":7", "\"size\":-7")),
                    Catch::Contains("item 0 object has a negative size"));
  CHECK_THROWS_WITH(decode(header_bytes_with(good, "\"bucket\":\"bucket\"", "\"bucket\":\"\"")),
                    Catch::Contains("item 0 object has an empty bucket or key"));
  CHECK_THROWS_WITH(decode(header_bytes_with(good, "\"etag\":\"\\\"e\\\"\"", "\"etag\":5")),
                    Catch::Contains("item 0 object field \"etag\" is not a string"));
  CHECK_THROWS_WITH(decode(header_bytes_with(good, "\"id\":\"a\"", "\"id\":\"a\",\"offset\":0,\"length\":0")),
                    Catch::Contains("item 0 has both a payload slice and an object reference"));
}

TEST_CASE("a reader from before references refuses a referenced item instead of taking it for an empty file",
          "[codec][storage]") {
  // What a version-1 reader without references sees: an item with no payload slice. The decoder of this
  // build without the "object" member is exactly that reader.
  const auto message =
      encode(ImageBatch{sample_job(), {{"a", {}, ObjectRef{"bucket", "k.jpg", "\"e\"", 7}}}});
  CHECK_THROWS_WITH(decode(header_bytes_with(message, "\"object\"", "\"future\"")),
                    Catch::Contains("item 0 lacks field \"offset\""));
  // Its ids are still salvaged, so the publisher answers the image instead of waiting for its timeout.
  CHECK(salvage_ids(message).image_ids == std::vector<std::string>{"a"});
}
