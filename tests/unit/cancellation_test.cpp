// The cancel record on the stream imgpipe.cancelled, and the bounded memory of cancelled jobs that every
// worker and publisher keeps while reading it.
#include <catch2/catch.hpp>

#include <string>

#include "imgpipe/messages/cancellation.hpp"

using namespace imgpipe;

TEST_CASE("a cancel record names the job, when and by whom, and reads back", "[unit][cancel]") {
  const CancelRecord record{"3f2a9c0d11e04b7a", 1764581234567, "imgpipe cancel on host (pid 42)"};
  const auto body = encode_cancel(record);
  const std::string text(body.begin(), body.end());
  CHECK_THAT(text, Catch::Contains("\"cancel\":\"3f2a9c0d11e04b7a\""));
  const auto back = decode_cancel(body);
  REQUIRE(back);
  CHECK(back->job_id == record.job_id);
  CHECK(back->at_ms == record.at_ms);
  CHECK(back->by == record.by);
}

TEST_CASE("anything else on the stream is not a cancel record, and never an exception", "[unit][cancel]") {
  auto bytes = [](const std::string& text) { return std::vector<std::uint8_t>(text.begin(), text.end()); };
  CHECK_FALSE(decode_cancel(bytes("")));
  CHECK_FALSE(decode_cancel(bytes("IMGP\x01")));
  CHECK_FALSE(decode_cancel(bytes("[1,2]")));
  CHECK_FALSE(decode_cancel(bytes("{\"cancel\":\"\"}")));
  CHECK_FALSE(decode_cancel(bytes("{\"cancel\":7}")));
  const auto minimal = decode_cancel(bytes("{\"cancel\":\"abc\"}"));
  REQUIRE(minimal);
  CHECK(minimal->job_id == "abc");
  CHECK(minimal->by.empty());
}

TEST_CASE("a worker remembers at most its capacity of cancelled jobs, forgetting the oldest first",
          "[unit][cancel]") {
  CancelledJobs jobs(3);
  CHECK(jobs.add("a"));
  CHECK_FALSE(jobs.add("a"));  // read again after a reconnect: nothing new
  CHECK(jobs.add("b"));
  CHECK(jobs.add("c"));
  CHECK(jobs.add("d"));
  CHECK(jobs.size() == 3);
  CHECK_FALSE(jobs.contains("a"));
  CHECK(jobs.contains("b"));
  CHECK(jobs.contains("d"));

  // Ten thousand cancels in a day keep a worker's memory at its capacity.
  CancelledJobs many;
  for (int i = 0; i < 100000; ++i) many.add("job-" + std::to_string(i));
  CHECK(many.size() == many.capacity());
  CHECK(many.contains("job-99999"));
  CHECK_FALSE(many.contains("job-0"));
}
