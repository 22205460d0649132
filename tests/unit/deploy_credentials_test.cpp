// The shipped deployments keep credentials out of command lines and never rely on RabbitMQ's guest user
// (which RabbitMQ admits from loopback only, by default: loopback_users.guest = true).
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>

#include "test_support.hpp"

using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {
std::string source_file(const std::string& relative) {
  return read_text_file(source_dir() / relative);
}

std::vector<fs::path> deployment_files() {
  std::vector<fs::path> files{source_dir() / "docker-compose.yml", source_dir() / ".env.example",
                              source_dir() / "deploy/Dockerfile"};
  for (const auto& entry : fs::recursive_directory_iterator(source_dir() / "deploy/k8s")) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  return files;
}
}  // namespace

TEST_CASE("deployments create their own RabbitMQ user and never use or re-enable guest",
          "[unit][credentials]") {
  const std::string compose = source_file("docker-compose.yml");
  // Required variables (":?"): compose refuses to start without them rather than fall back to guest.
  CHECK_THAT(compose, Catch::Contains("RABBITMQ_DEFAULT_USER: ${RABBITMQ_DEFAULT_USER:?") &&
                          Catch::Contains("RABBITMQ_DEFAULT_PASS: ${RABBITMQ_DEFAULT_PASS:?"));
  std::smatch user;
  const std::string env_example = source_file(".env.example");
  REQUIRE(std::regex_search(env_example, user, std::regex("RABBITMQ_DEFAULT_USER=(\\S+)")));
  CHECK(user[1] != "guest");
  CHECK_THAT(source_file("deploy/k8s/rabbitmq.yaml"),
             Catch::Contains("name: RABBITMQ_DEFAULT_USER") && Catch::Contains("secretKeyRef"));
  for (const auto& file : deployment_files()) {
    INFO(file);
    const std::string text = read_text_file(file);
    CHECK_THAT(text, !Catch::Contains("guest"));
    CHECK_THAT(text, !Catch::Contains("loopback_users"));  // nothing widens who may log in as guest
  }
  // The test brokers keep guest on loopback explicitly.
  CHECK_THAT(source_file("scripts/broker"), Catch::Contains("loopback_users.guest = true"));
}

TEST_CASE("deployments hand the broker URL to imgpipe through the environment, never its command line",
          "[unit][credentials]") {
  for (const auto& file : deployment_files()) {
    INFO(file);
    CHECK_THAT(read_text_file(file), !Catch::Contains("--broker") && !Catch::Contains("--management "));
  }
  for (const auto* workload : {"preprocess", "feature", "classify", "publisher/job"}) {
    const std::string text = source_file(std::string("deploy/k8s/") + workload + ".yaml");
    INFO(workload);
    // From the Secret, not a literal value in the manifest.
    CHECK(std::regex_search(text, std::regex("name: IMGPIPE_BROKER\\s+valueFrom: \\{secretKeyRef:")));
  }
}
