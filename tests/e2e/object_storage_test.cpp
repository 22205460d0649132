// Inputs from object storage (the claim-check pattern): `imgpipe submit s3://bucket/prefix/` through real
// workers against a real S3-compatible server (s3s-fs, started by scripts/test). Messages carry references;
// the preprocess workers fetch the objects themselves.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "e2e_support.hpp"
#include "imgpipe/ops/broker_address.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/storage/s3_client.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {

const S3Client& test_store() {
  static const S3Client client([] {
    S3Config config;
    config.endpoint = s3_endpoint();
    config.credentials = {s3_access_key(), s3_secret_key(), ""};
    return config;
  }());
  return client;
}

std::string put_file(const std::string& bucket, const std::string& key, const fs::path& file) {
  return test_store().put_object(bucket, key, read_file(file));
}

Environment cluster_environment(Environment extra = {}) {
  Environment environment = broker_environment();
  for (const auto& [name, value] : s3_environment()) environment[name] = value;
  for (const auto& [name, value] : extra) environment[name] = value;
  return environment;
}

std::vector<std::string> job_arguments(const std::string& command, const std::string& output,
                                       const std::vector<std::string>& inputs) {
  std::vector<std::string> arguments = {
      command, "--models", models_dir().string(), "--model", "photos", "--quiet", "-o", output};
  if (command == "submit") arguments.insert(arguments.end(), {"--idle-timeout", "300"});
  arguments.insert(arguments.end(), inputs.begin(), inputs.end());
  return arguments;
}

RunResult run_job(const std::string& command, const std::string& output,
                  const std::vector<std::string>& inputs,
                  const Environment& environment = cluster_environment()) {
  return run_tool(worker_binary("imgpipe"), job_arguments(command, output, inputs), 600, environment);
}

// Every process's command line but the test S3 server's (s3s-fs takes its keys no other way).
void check_no_command_line_holds(const std::vector<std::string>& secrets) {
  const std::string server = s3_server_pid();
  std::size_t seen = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const auto pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos || pid == server) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string line((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(line.begin(), line.end(), '\0', ' ');
    if (line.find("imgpipe") != std::string::npos) ++seen;
    for (const auto& secret : secrets) {
      INFO("pid " << pid << ": " << line);
      CHECK(line.find(secret) == std::string::npos);
    }
  }
  CHECK(seen >= 3);  // at least the three workers were looked at
}

bool wait_for(const std::function<bool()>& condition, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

}  // namespace

TEST_CASE(
    "photos submitted from a bucket get one line each with the labels of the same photos submitted as "
    "files, in broker and local mode, and no credential reaches a command line or a log",
    "[e2e][storage][credentials]") {
  const std::string bucket = unique_bucket("photos");
  test_store().create_bucket(bucket);
  TempDir folder("imgpipe-s3-photos");
  const std::vector<std::pair<std::string, fs::path>> photos = {
      {"fruits.jpg", opencv_photo("fruits.jpg")},
      {"baboon.jpg", opencv_photo("baboon.jpg")},
      {"more/squirrel cls.jpg", opencv_photo("squirrel_cls.jpg")},
      {"coffee.png", skimage_photo("coffee.png")},
      {"camera.png", skimage_photo("camera.png")}};
  for (const auto& [name, source] : photos) {
    fs::create_directories((folder.path() / name).parent_path());
    fs::copy_file(source, folder.path() / name);
    put_file(bucket, "photos/" + name, source);
  }
  test_store().put_object(bucket, "photos/notes.txt", std::vector<std::uint8_t>{'h', 'i'});
  test_store().put_object(bucket, "elsewhere/other.jpg", read_file(opencv_photo("fruits.jpg")));

  Cluster cluster(false, {"--verbose"}, {}, cluster_environment());
  TempDir out("imgpipe-s3-out");
  const auto from_files = run_job("submit", (out.path() / "files.jsonl").string(), {folder.path().string()});
  REQUIRE(from_files.exit_code == 0);
  const auto from_bucket =
      run_job("submit", (out.path() / "bucket.jsonl").string(), {"s3://" + bucket + "/photos/"});
  INFO(from_bucket.err);
  REQUIRE(from_bucket.exit_code == 0);
  CHECK_THAT(from_bucket.err, Catch::Contains("skipped 1 file that is not an image by its extension: s3://" +
                                              bucket + "/photos/notes.txt"));
  check_no_command_line_holds({s3_secret_key()});

  const auto local = run_job("run", (out.path() / "local.jsonl").string(), {"s3://" + bucket + "/photos/"});
  INFO(local.err);
  REQUIRE(local.exit_code == 0);

  const auto files = lines_by_image(read_text_file(out.path() / "files.jsonl"));
  const auto bucket_lines = lines_by_image(read_text_file(out.path() / "bucket.jsonl"));
  const auto local_lines = lines_by_image(read_text_file(out.path() / "local.jsonl"));
  REQUIRE(files.size() == photos.size());
  REQUIRE(bucket_lines.size() == photos.size());
  REQUIRE(local_lines.size() == photos.size());
  for (const auto& [name, source] : photos) {
    const std::string uri = "s3://" + bucket + "/photos/" + name;
    INFO(uri);
    REQUIRE(bucket_lines.count(uri) == 1);
    REQUIRE(local_lines.count(uri) == 1);
    const auto& file_line = files.at((folder.path() / name).string());
    CHECK(bucket_lines.at(uri).at("error").is_null());
    CHECK(bucket_lines.at(uri).at("label") == file_line.at("label"));
    CHECK(bucket_lines.at(uri).at("score").get<double>() ==
          Approx(file_line.at("score").get<double>()).margin(1e-6));
    CHECK(local_lines.at(uri).at("label") == file_line.at("label"));
  }

  // Verbose worker logs, the tool's output: neither the key id nor the secret anywhere.
  std::string logs = from_bucket.err + from_bucket.out + local.err + local.out;
  for (const auto* role : {"preprocess", "feature", "classify"}) logs += read_text_file(cluster.log_of(role));
  CHECK_THAT(logs, Catch::Contains("fetched from " + s3_endpoint()));
  CHECK_THAT(logs, !Catch::Contains(s3_secret_key()) && !Catch::Contains(s3_access_key()));
}

TEST_CASE(
    "a missing object, one changed or deleted after listing, and one over the size limit each get their own "
    "error line while the job completes, with s3:// URIs and paths mixed in a list",
    "[e2e][storage]") {
  const std::string bucket = unique_bucket("faults");
  test_store().create_bucket(bucket);
  put_file(bucket, "in/ok.jpg", opencv_photo("fruits.jpg"));
  put_file(bucket, "in/changed.jpg", opencv_photo("baboon.jpg"));
  put_file(bucket, "in/deleted.jpg", skimage_photo("rocket.jpg"));
  put_file(bucket, "in/big.png", skimage_photo("coffee.png"));  // 466706 bytes, over the workers' limit
  TempDir folder("imgpipe-s3-list");
  fs::copy_file(opencv_photo("fruits.jpg"), folder.path() / "local fruits.jpg");
  {
    std::ofstream list(folder.path() / "list.txt");
    list << "s3://" << bucket << "/in/\n"
         << "s3://" << bucket << "/absent.jpg\n"
         << "local fruits.jpg\n";
  }
  TempDir out("imgpipe-s3-out");
  const fs::path output = out.path() / "results.jsonl";

  // The publisher lists and publishes while no worker runs; the objects change before any is fetched.
  BrokerSession session(BrokerAddress::parse(broker_url()), {});
  session.declare_topology();
  REQUIRE(session.message_count(queues::images) == 0);
  ChildProcess submit(worker_binary("imgpipe"),
                      job_arguments("submit", output.string(), {"@" + (folder.path() / "list.txt").string()}),
                      out.path() / "submit.log", cluster_environment());
  REQUIRE(wait_for([&] { return session.message_count(queues::images) >= 1; }, std::chrono::seconds(60)));
  put_file(bucket, "in/changed.jpg", opencv_photo("fruits.jpg"));
  test_store().remove_object(bucket, "in/deleted.jpg");

  Cluster cluster(false, {}, {{"preprocess", {"--max-file-bytes", "200000"}}}, cluster_environment());
  REQUIRE(wait_for([&] { return !submit.running(); }, std::chrono::seconds(300)));
  INFO(read_text_file(out.path() / "submit.log"));
  CHECK(submit.stop() == 3);  // some images failed, each with its line

  const auto lines = lines_by_image(read_text_file(output));
  const std::string in = "s3://" + bucket + "/in/";
  REQUIRE(lines.size() == 6);
  CHECK(lines.at(in + "ok.jpg").at("error").is_null());
  CHECK(lines.at((folder.path() / "local fruits.jpg").string()).at("label") ==
        lines.at(in + "ok.jpg").at("label"));
  CHECK_THAT(lines.at(in + "changed.jpg").at("error").get<std::string>(),
             Catch::StartsWith(in + "changed.jpg: 412 PreconditionFailed") &&
                 Catch::Contains("changed after the job listed it"));
  CHECK_THAT(lines.at(in + "deleted.jpg").at("error").get<std::string>(),
             Catch::StartsWith(in + "deleted.jpg: 404 NoSuchKey"));
  CHECK(lines.at(in + "big.png").at("error") ==
        in + "big.png: object of 466706 bytes is over the limit of 200000 bytes");
  CHECK_THAT(lines.at("s3://" + bucket + "/absent.jpg").at("error").get<std::string>(),
             Catch::StartsWith("s3://" + bucket + "/absent.jpg: 404"));
  CHECK(cluster.worker("preprocess").running());
}

TEST_CASE("a preprocess worker with a wrong secret key answers each object with the server's refusal",
          "[e2e][storage][credentials]") {
  const std::string bucket = unique_bucket("wrongkey");
  test_store().create_bucket(bucket);
  put_file(bucket, "a.jpg", opencv_photo("fruits.jpg"));
  put_file(bucket, "b.png", skimage_photo("camera.png"));
  TempDir folder("imgpipe-s3-wrong");
  fs::copy_file(opencv_photo("baboon.jpg"), folder.path() / "baboon.jpg");

  const std::string wrong_secret = "wrong-" + s3_secret_key().substr(0, 6) + "-secret";
  Cluster cluster(false, {"--verbose"}, {}, cluster_environment({{"AWS_SECRET_ACCESS_KEY", wrong_secret}}));
  TempDir out("imgpipe-s3-out");
  const fs::path output = out.path() / "results.jsonl";
  const auto result = run_job("submit", output.string(), {"s3://" + bucket + "/", folder.path().string()});
  INFO(result.err);
  CHECK(result.exit_code == 3);
  const auto lines = lines_by_image(read_text_file(output));
  REQUIRE(lines.size() == 3);
  for (const auto* key : {"a.jpg", "b.png"}) {
    CHECK_THAT(lines.at("s3://" + bucket + "/" + key).at("error").get<std::string>(),
               Catch::StartsWith("s3://" + bucket + "/" + key + ": 403"));
  }
  CHECK(lines.at((folder.path() / "baboon.jpg").string()).at("error").is_null());
  check_no_command_line_holds({wrong_secret, s3_secret_key()});
  const std::string log = read_text_file(cluster.log_of("preprocess"));
  CHECK_THAT(log, !Catch::Contains(wrong_secret) && !Catch::Contains(s3_access_key()));
  CHECK(cluster.worker("preprocess").running());
}

TEST_CASE("a fused preprocess+feature node fetches the objects of a bucket like a preprocess worker",
          "[e2e][storage][fused]") {
  const std::string bucket = unique_bucket("fused");
  test_store().create_bucket(bucket);
  put_file(bucket, "baboon.jpg", opencv_photo("baboon.jpg"));
  put_file(bucket, "squirrel.jpg", opencv_photo("squirrel_cls.jpg"));
  Cluster cluster(/*fused=*/true, {}, {}, cluster_environment());
  TempDir out("imgpipe-s3-out");
  const fs::path output = out.path() / "results.jsonl";
  const auto result = run_job("submit", output.string(), {"s3://" + bucket});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  const auto lines = lines_by_image(read_text_file(output));
  REQUIRE(lines.size() == 2);
  CHECK(lines.at("s3://" + bucket + "/baboon.jpg").at("label") == "baboon");
  CHECK(lines.at("s3://" + bucket + "/squirrel.jpg").at("label") == "fox squirrel");
}
