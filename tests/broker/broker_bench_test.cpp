// bench/capacity's measuring program against the real test broker: a smoke test of its output, never of its
// figures (the machine is shared; a rate is not a specification).
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <sstream>

#include "process.hpp"
#include "test_support.hpp"

using namespace imgpipe::test;

namespace {

std::map<std::string, std::string> fields_of(const std::string& line) {
  std::map<std::string, std::string> fields;
  std::istringstream in(line);
  std::string field;
  while (in >> field) {
    const auto equals = field.find('=');
    REQUIRE(equals != std::string::npos);
    fields[field.substr(0, equals)] = field.substr(equals + 1);
  }
  return fields;
}

}  // namespace

TEST_CASE(
    "the broker benchmark moves features messages through a quorum queue for a second and prints one line of "
    "figures",
    "[broker][bench]") {
  const auto bench = binary_dir() / "bench" / "imgpipe-broker-bench";
  // The test broker's pid is not known here; any live process exercises the CPU reading from /proc.
  const auto run = run_tool(bench,
                            {"--label", "smoke", "--kind", "features", "--batch", "8", "--seconds", "1",
                             "--warmup", "0.2", "--broker-pid", std::to_string(::getpid())},
                            120, broker_environment());
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  REQUIRE(std::count(run.out.begin(), run.out.end(), '\n') == 1);
  const auto fields = fields_of(run.out);
  CHECK(fields.at("label") == "smoke");
  CHECK(fields.at("kind") == "features");
  CHECK(fields.at("queue") == "quorum");
  // 8 images of 1280 floats, their ids and the job's JSON header
  CHECK(std::stoul(fields.at("message_bytes")) > 8 * 1280 * 4);
  CHECK(std::stoul(fields.at("messages")) > 0);
  CHECK(std::stod(fields.at("msgs_per_s")) > 0.0);
  CHECK(std::stod(fields.at("images_per_s")) == Approx(std::stod(fields.at("msgs_per_s")) * 8).epsilon(0.01));
  for (const char* key : {"MB_per_s", "broker_cpu_cores", "bench_cpu_cores", "machine_busy_cores"})
    CHECK(std::stod(fields.at(key)) >= 0.0);
}

TEST_CASE("the broker benchmark reports the size of a message without a broker", "[broker][bench]") {
  const auto run = run_tool(binary_dir() / "bench" / "imgpipe-broker-bench",
                            {"--sizes-only", "--kind", "pixels", "--batch", "2", "--geometry", "28x28x1"});
  REQUIRE(run.exit_code == 0);
  const auto fields = fields_of(run.out);
  CHECK(fields.at("images_per_message") == "2.00");
  CHECK(std::stoul(fields.at("message_bytes")) > 2 * 28 * 28);
  CHECK(fields.count("msgs_per_s") == 0);
}
