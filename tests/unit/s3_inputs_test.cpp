// Object storage credentials and a job's object inputs, without a server: where the keys may come from, and
// how a job record keeps the version of each object for --resume.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

#include "imgpipe/job/input_file.hpp"
#include "imgpipe/job/journal.hpp"
#include "imgpipe/ops/credentials.hpp"
#include "imgpipe/storage/s3_config.hpp"
#include "test_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;

namespace {

// Sets the AWS_* variables for one spec and restores the test's own afterwards.
class AwsEnvironment {
 public:
  AwsEnvironment(const char* key_id, const char* secret, const char* token) {
    for (const char* name : kNames) {
      const char* value = std::getenv(name);
      saved_.emplace_back(name, value != nullptr ? std::optional<std::string>(value) : std::nullopt);
    }
    set("AWS_ACCESS_KEY_ID", key_id);
    set("AWS_SECRET_ACCESS_KEY", secret);
    set("AWS_SESSION_TOKEN", token);
  }
  ~AwsEnvironment() {
    for (const auto& [name, value] : saved_) set(name.c_str(), value ? value->c_str() : nullptr);
  }
  AwsEnvironment(const AwsEnvironment&) = delete;
  AwsEnvironment& operator=(const AwsEnvironment&) = delete;

 private:
  static void set(const char* name, const char* value) {
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
  static constexpr const char* kNames[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::filesystem::path secret_file(const TempDir& dir, const std::string& name, const std::string& content) {
  const auto file = dir.path() / name;
  std::ofstream(file, std::ios::binary) << content;
  return file;
}

}  // namespace

TEST_CASE("S3 credentials come from the AWS_* variables, or the secrets from files, never both",
          "[unit][credentials][storage]") {
  TempDir dir;
  SECTION("none at all: unsigned requests") {
    const AwsEnvironment environment(nullptr, nullptr, nullptr);
    CHECK(resolve_s3_credentials({}).anonymous());
  }
  SECTION("the environment") {
    const AwsEnvironment environment("AKIDEXAMPLE", "env-secret", "env-token");
    const auto credentials = resolve_s3_credentials({});
    CHECK(credentials.access_key_id == "AKIDEXAMPLE");
    CHECK(credentials.secret_access_key == "env-secret");
    CHECK(credentials.session_token == "env-token");
  }
  SECTION("files hold the secret and the token alone; one trailing newline is not part of them") {
    const AwsEnvironment environment("AKIDEXAMPLE", nullptr, nullptr);
    const auto credentials = resolve_s3_credentials(
        {secret_file(dir, "secret", "file-secret\n"), secret_file(dir, "token", "file-token")});
    CHECK(credentials.secret_access_key == "file-secret");
    CHECK(credentials.session_token == "file-token");
  }
  SECTION("a secret from both the variable and a file is ambiguous, and the message holds neither") {
    const AwsEnvironment environment("AKIDEXAMPLE", "env-secret", nullptr);
    try {
      resolve_s3_credentials({secret_file(dir, "secret", "file-secret"), std::nullopt});
      FAIL("accepted two secrets");
    } catch (const CredentialError& error) {
      CHECK_THAT(error.what(), Catch::Contains("AWS_SECRET_ACCESS_KEY") &&
                                   Catch::Contains("--s3-secret-key-file") &&
                                   !Catch::Contains("env-secret") && !Catch::Contains("file-secret"));
    }
  }
  SECTION("half a key pair is refused") {
    {
      const AwsEnvironment environment("AKIDEXAMPLE", nullptr, nullptr);
      CHECK_THROWS_WITH(resolve_s3_credentials({}), Catch::Contains("no secret key"));
    }
    const AwsEnvironment environment(nullptr, "env-secret", nullptr);
    CHECK_THROWS_WITH(resolve_s3_credentials({}), Catch::Contains("without its key id"));
  }
  SECTION("an unreadable or empty file is named") {
    const AwsEnvironment environment("AKIDEXAMPLE", nullptr, nullptr);
    CHECK_THROWS_WITH(resolve_s3_credentials({dir.path() / "missing", std::nullopt}),
                      Catch::Contains("missing"));
    CHECK_THROWS_WITH(resolve_s3_credentials({secret_file(dir, "empty", ""), std::nullopt}),
                      Catch::Contains("is empty"));
  }
}

TEST_CASE("a job's inputs file keeps each object's bucket, key, ETag and size for --resume, and no folder",
          "[unit][storage]") {
  TempDir state;
  const auto file = state.path() / "jobs" / "0123456789abcdef.inputs";
  InputFileWriter writer(file);
  writer.add({"000000", "photos/a.jpg", {}, std::nullopt});
  writer.add({"000001", "s3://bucket/2026/b c.jpg", {}, ObjectRef{"bucket", "2026/b c.jpg", "\"e1\"", 42}});
  writer.add({"000002", "photos/walked/c.jpg", "photos/walked", std::nullopt});
  writer.close();
  InputFileReader readable(file, "/work/here");
  const auto a = readable.next();
  const auto b = readable.next();
  const auto c = readable.next();
  CHECK(!readable.next());
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(c);
  CHECK(a->image_id == "000000");
  CHECK(!a->object);
  CHECK(a->path == "/work/here/photos/a.jpg");
  CHECK(a->confined_to.empty());
  CHECK(b->image_id == "000001");
  REQUIRE(b->object);
  CHECK(*b->object == ObjectRef{"bucket", "2026/b c.jpg", "\"e1\"", 42});
  CHECK(b->path == "s3://bucket/2026/b c.jpg");  // not made into a path under the working folder
  CHECK(c->path == "/work/here/photos/walked/c.jpg");
  CHECK(c->confined_to == "/work/here/photos/walked");
  // Without a working folder the paths stay as named: they appear so in the output.
  InputFileReader as_named(file);
  CHECK(as_named.next()->path == "photos/a.jpg");
}
