// The operator's view of a running cluster: each worker's Prometheus /metrics and its JSON log lines.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "e2e_support.hpp"

using namespace imgpipe::test;

namespace {

RunResult submit(const InputFolder& inputs, const std::string& output) {
  return run_tool(worker_binary("imgpipe"),
                  {"submit", "--models", models_dir().string(), "--model", "fashion", "--quiet",
                   "--idle-timeout", "120", "-o", output, inputs.dir.path().string()},
                  600, broker_environment());
}

// One sample of the Prometheus text format: `name{label="value",...} number`.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0.0;
};

std::vector<Sample> parse_metrics(const std::string& text) {
  std::vector<Sample> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    Sample sample;
    const auto brace = line.find('{');
    const auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    sample.name = line.substr(0, std::min(brace, space));
    if (brace != std::string::npos) {
      // Our label values are plain words, so no escaped quotes to handle.
      std::istringstream labels(line.substr(brace + 1, line.find('}') - brace - 1));
      std::string pair;
      while (std::getline(labels, pair, ',')) {
        const auto equals = pair.find('=');
        sample.labels[pair.substr(0, equals)] = pair.substr(equals + 2, pair.size() - equals - 3);
      }
    }
    sample.value = std::stod(line.substr(space + 1));
    samples.push_back(std::move(sample));
  }
  return samples;
}

// The value of the one sample with this name whose labels include `labels`; fails the test if absent.
double metric(const std::vector<Sample>& samples, const std::string& name,
              const std::map<std::string, std::string>& labels) {
  std::optional<double> found;
  for (const auto& sample : samples) {
    if (sample.name != name) continue;
    bool matches = true;
    for (const auto& [key, value] : labels) {
      const auto it = sample.labels.find(key);
      matches = matches && it != sample.labels.end() && it->second == value;
    }
    if (!matches) continue;
    INFO(name << " has more than one sample with these labels");
    REQUIRE(!found);
    found = sample.value;
  }
  INFO("no sample " << name);
  REQUIRE(found);
  return *found;
}

constexpr int kPreprocessPort = 19464;
constexpr int kFeaturePort = 19465;
constexpr int kClassifyPort = 19466;

}  // namespace

TEST_CASE("every worker serves /metrics counting a job's images, its failures by reason, and timings",
          "[e2e][broker][metrics]") {
  InputFolder inputs(1);
  Cluster cluster(false, {},
                  {{"preprocess", {"--metrics-port", std::to_string(kPreprocessPort)}},
                   {"feature", {"--metrics-port", std::to_string(kFeaturePort)}},
                   {"classify", {"--metrics-port", std::to_string(kClassifyPort)}}});
  TempDir out;
  const auto result = submit(inputs, (out.path() / "results.jsonl").string());
  INFO(result.err);
  REQUIRE(result.exit_code == 3);  // the broken files fail, each with its own line
  // Counters are updated before a stage publishes, so every result the publisher saw is already counted.
  const double good = static_cast<double>(inputs.true_class.size() + inputs.photos.size());

  const auto preprocess = parse_metrics(http_get(kPreprocessPort, "/metrics"));
  const std::map<std::string, std::string> at_preprocess{{"stage", "preprocess"}};
  CHECK(metric(preprocess, "imgpipe_images_processed_total", at_preprocess) == good);
  auto errors = [&](const std::string& reason) {
    return metric(preprocess, "imgpipe_image_errors_total", {{"stage", "preprocess"}, {"reason", reason}});
  };
  CHECK(errors("empty_file") == 1);    // empty.jpg
  CHECK(errors("not_an_image") == 1);  // notes.jpg, a text file
  CHECK(errors("truncated") == 2);     // truncated.jpg, half.png
  CHECK(errors("too_large") == 1);     // bomb.png, refused from its header
  CHECK(errors("unsupported_format") == 0);
  CHECK(errors("model_error") == 0);
  CHECK(errors("other") == 0);
  CHECK(metric(preprocess, "imgpipe_batches_total", at_preprocess) > 0);
  CHECK(metric(preprocess, "imgpipe_batch_processing_seconds_count", at_preprocess) > 0);
  CHECK(metric(preprocess, "imgpipe_queue_wait_seconds_count", at_preprocess) > 0);
  CHECK(metric(preprocess, "imgpipe_model_load_seconds_count", at_preprocess) == 1);
  CHECK(metric(preprocess, "imgpipe_dead_lettered_total", at_preprocess) == 0);
  CHECK(metric(preprocess, "imgpipe_deliveries_in_flight", at_preprocess) >= 0);

  for (const auto& [stage, port] :
       {std::pair{"feature", kFeaturePort}, std::pair{"classify", kClassifyPort}}) {
    INFO(stage);
    const auto samples = parse_metrics(http_get(port, "/metrics"));
    const std::map<std::string, std::string> at_stage{{"stage", stage}};
    CHECK(metric(samples, "imgpipe_images_processed_total", at_stage) == good);
    CHECK(metric(samples, "imgpipe_batch_processing_seconds_count", at_stage) > 0);
    // The header each stage stamps on what it publishes is what the next one measures from.
    CHECK(metric(samples, "imgpipe_queue_wait_seconds_count", at_stage) > 0);
    CHECK(metric(samples, "imgpipe_model_load_seconds_count", at_stage) == 1);
    CHECK(metric(samples, "imgpipe_image_errors_total", {{"stage", stage}, {"reason", "model_error"}}) == 0);
  }
}

TEST_CASE(
    "workers started with --log-format json write one JSON object per line, naming job and image on a failed "
    "image's line",
    "[e2e][broker][metrics]") {
  InputFolder inputs(1);
  TempDir out;
  Cluster cluster(false, {"--log-format", "json"});
  const auto result = submit(inputs, (out.path() / "results.jsonl").string());
  INFO(result.err);
  REQUIRE(result.exit_code == 3);
  for (const std::string role : {"preprocess", "feature", "classify"}) {
    INFO(role);
    std::istringstream log(read_text_file(cluster.log_of(role)));
    std::string line;
    std::size_t lines = 0;
    while (std::getline(log, line)) {
      INFO(line);
      const auto parsed = nlohmann::json::parse(line);  // throws, failing the test, on a text line
      CHECK(parsed.at("ts").is_string());
      CHECK(parsed.at("level").is_string());
      CHECK(parsed.at("component") == role);
      CHECK(parsed.at("msg").is_string());
      ++lines;
    }
    CHECK(lines > 0);
  }

  // The line about notes.jpg, a text file, names its job and image as fields, not only inside the text.
  // (Image ids are the publisher's numbering of its inputs, not paths.)
  const std::string preprocess_log = read_text_file(cluster.log_of("preprocess"));
  std::optional<nlohmann::json> failed;
  std::set<std::string> jobs;
  std::istringstream log(preprocess_log);
  std::string line;
  while (std::getline(log, line)) {
    const auto parsed = nlohmann::json::parse(line);
    if (parsed.contains("job")) jobs.insert(parsed["job"].get<std::string>());
    if (parsed["msg"].get<std::string>().find("not a supported image") != std::string::npos) failed = parsed;
  }
  INFO(preprocess_log);
  REQUIRE(failed);
  CHECK(failed->at("image").get<std::string>().size() > 0);
  CHECK(failed->at("job").get<std::string>().size() > 0);
  CHECK(jobs.size() == 1);  // one job submitted, and every line about its images names it
  CHECK((*failed)["level"] == "info");
}

namespace {

// Holds a listening socket on 127.0.0.1:port, as another program on the host would.
class TakenPort {
 public:
  explicit TakenPort(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    taken_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
             ::listen(fd_, 1) == 0;
  }
  ~TakenPort() { ::close(fd_); }
  TakenPort(const TakenPort&) = delete;
  TakenPort& operator=(const TakenPort&) = delete;
  bool taken_by_us() const { return taken_; }

 private:
  int fd_;
  bool taken_ = false;
};

// The port in the worker's "metrics http://127.0.0.1:PORT/metrics" start line, 0 when it serves none.
int served_port(const std::string& log) {
  const std::string marker = "metrics http://127.0.0.1:";
  const auto at = log.find(marker);
  return at == std::string::npos ? 0 : std::stoi(log.substr(at + marker.size()));
}

}  // namespace

TEST_CASE(
    "a metrics port that is taken never stops a worker: the default moves to the next free port, a chosen "
    "one is "
    "given up with a warning",
    "[e2e][broker][metrics]") {
  constexpr int kChosenPort = 19467;
  const TakenPort chosen(kChosenPort);
  const TakenPort default_port(9464);  // may already be taken by something else: either way it is not free
  REQUIRE(chosen.taken_by_us());
  InputFolder inputs(1);
  TempDir out;
  Cluster cluster(false, {}, {{"preprocess", {"--metrics-port", std::to_string(kChosenPort)}}});
  const auto result = submit(inputs, (out.path() / "results.jsonl").string());
  INFO(result.err);
  CHECK(result.exit_code == 3);  // the job ran through all three workers: only the broken files fail

  const std::string preprocess_log = read_text_file(cluster.log_of("preprocess"));
  INFO(preprocess_log);
  CHECK_THAT(preprocess_log,
             Catch::Contains("cannot serve metrics on 127.0.0.1:" + std::to_string(kChosenPort)) &&
                 Catch::Contains("running WITHOUT metrics"));
  CHECK(served_port(preprocess_log) == 0);
  CHECK_THAT(preprocess_log, Catch::Contains("metrics off"));

  for (const std::string role : {"feature", "classify"}) {
    const std::string log = read_text_file(cluster.log_of(role));
    INFO(role << ": " << log);
    const int port = served_port(log);
    CHECK(port > 9464);
    CHECK(port < 9464 + 16);
    CHECK_THAT(log, Catch::Contains("metrics port 9464 is taken"));
    const auto samples = parse_metrics(http_get(port, "/metrics"));
    CHECK(metric(samples, "imgpipe_images_processed_total", {{"stage", role}}) > 0);
  }
}
