// Credentials never on a command line and never in a log: real workers and the publisher, a user with a
// distinctive password, dropped connections and verbose logging.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "e2e_support.hpp"
#include "imgpipe/transport/amqp/broker.hpp"

using namespace imgpipe;
using namespace imgpipe::test;

namespace {

std::string random_hex(std::size_t length) {
  std::random_device entropy;
  std::string out;
  while (out.size() < length) out += "0123456789abcdef"[entropy() % 16];
  return out;
}

// Every process's command line on this machine, with the NULs between arguments as spaces.
std::vector<std::pair<std::string, std::string>> all_command_lines() {
  std::vector<std::pair<std::string, std::string>> lines;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);  // gone already: reads nothing
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(text.begin(), text.end(), '\0', ' ');
    lines.emplace_back(name, text);
  }
  return lines;
}

void check_no_command_line_holds(const std::string& secret) {
  const auto lines = all_command_lines();
  REQUIRE(lines.size() > 3);
  for (const auto& [pid, line] : lines) {
    INFO("pid " << pid << ": " << line);
    CHECK(line.find(secret) == std::string::npos);
  }
}

bool wait_for(const std::function<bool()>& condition, std::chrono::seconds limit = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

}  // namespace

TEST_CASE(
    "a password on the command line is refused with exit 2 by every program, but not in the environment",
    "[e2e][cli][credentials]") {
  const std::string url = "amqp://someone:cmdline-secret@127.0.0.1:1/";
  for (const auto* program : {"imgpipe-preprocess", "imgpipe-feature", "imgpipe-classify"}) {
    INFO(program);
    const auto result = run_tool(worker_binary(program), {"--broker", url});
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.err, Catch::Contains("--broker must not carry a password") &&
                               Catch::Contains("IMGPIPE_BROKER") &&
                               Catch::Contains("--broker-password-file"));
    CHECK_THAT(result.err + result.out, !Catch::Contains("cmdline-secret"));
  }
  const auto submit = run_tool(worker_binary("imgpipe"), {"submit", "--broker=" + url, "x.jpg"});
  CHECK(submit.exit_code == 2);
  CHECK_THAT(submit.err, Catch::Contains("--broker must not carry a password"));
  const auto status = run_tool(worker_binary("imgpipe"),
                               {"status", "--management", "http://someone:cmdline-secret@127.0.0.1:1/"}, 60,
                               broker_environment());
  CHECK(status.exit_code == 2);
  CHECK_THAT(status.err, Catch::Contains("--management must not carry a password") &&
                             Catch::Contains("IMGPIPE_MANAGEMENT") &&
                             Catch::Contains("--management-password-file"));
  CHECK_THAT(status.err, !Catch::Contains("cmdline-secret"));
  // The same URL in the environment is accepted: the worker gets as far as trying the (closed) port.
  TempDir logs;
  ChildProcess worker(worker_binary("imgpipe-classify"), {"--metrics-port", "0"},
                      logs.path() / "classify.log", {{"IMGPIPE_BROKER", url}});
  CHECK(wait_for([&] {
    return std::filesystem::exists(logs.path() / "classify.log") &&
           read_text_file(logs.path() / "classify.log").find("reconnecting") != std::string::npos;
  }));
  CHECK(worker.stop() == 0);
  CHECK_THAT(read_text_file(logs.path() / "classify.log"),
             Catch::Contains("amqp://someone:***@127.0.0.1:1/") && !Catch::Contains("cmdline-secret"));
}

TEST_CASE(
    "a distinctive password appears in no command line and no log line, through reconnects and failures",
    "[e2e][broker][credentials]") {
  // The hex part is what we look for: it survives percent-encoding, which '@' and '/' around it do not.
  const std::string secret = random_hex(24);
  const std::string password = "pw@" + secret + "/x";
  const std::string user = "imgpipe-secret-test-" + random_hex(6);
  TempDir dir;
  const auto password_file = dir.path() / "broker-password";
  std::ofstream(password_file) << password;  // no newline: rabbitmqctl reads the first line as is
  broker_ctl("add-user " + user + " < '" + password_file.string() + "'");

  const auto test_broker = BrokerAddress::parse(broker_url());
  const std::string host_port = test_broker.host + ":" + std::to_string(test_broker.port);
  const std::string encoded = "pw%40" + secret + "%2Fx";
  const Environment with_password{
      {"IMGPIPE_BROKER", "amqp://" + user + ":" + encoded + "@" + host_port + "/"}};
  // The publisher gets the password from a file, the way a mounted Secret gives it.
  const Environment from_file{{"IMGPIPE_BROKER", "amqp://" + user + "@" + host_port + "/"},
                              {"IMGPIPE_BROKER_PASSWORD_FILE", password_file.string()}};

  InputFolder inputs(1);
  const auto results = dir.path() / "results.jsonl";
  std::string worker_logs;
  std::string publisher_log;
  {
    // --verbose: whatever a worker would log at debug level must not leak the password either.
    Cluster cluster(true, {"--verbose"}, {}, with_password);
    const auto log_has = [&](const std::string& role, const std::string& part, std::size_t times) {
      return std::filesystem::exists(cluster.log_of(role)) &&
             count_of(read_text_file(cluster.log_of(role)), part) >= times;
    };
    const auto logs = [&] {
      return read_text_file(cluster.log_of("feature")) + read_text_file(cluster.log_of("classify"));
    };
    const bool connected =
        wait_for([&] { return log_has("feature", "consuming", 1) && log_has("classify", "consuming", 1); });
    INFO(logs());
    REQUIRE(connected);
    check_no_command_line_holds(secret);

    // Every connection dropped by the broker: the workers log the failure and log in again.
    broker_ctl("close-connections");
    const bool reconnected =
        wait_for([&] { return log_has("feature", "consuming", 2) && log_has("classify", "consuming", 2); });
    INFO(logs());
    REQUIRE(reconnected);

    // A login that fails: the wrong password is as secret as the right one.
    const std::string wrong = random_hex(24);
    const auto refused =
        run_tool(worker_binary("imgpipe"), {"submit", "--quiet", inputs.dir.path().string()}, 120,
                 {{"IMGPIPE_BROKER", "amqp://" + user + ":" + wrong + "@" + host_port + "/"}});
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err, Catch::Contains("ACCESS_REFUSED") || Catch::Contains("403"));
    CHECK_THAT(refused.err + refused.out, !Catch::Contains(wrong));

    ChildProcess publisher(worker_binary("imgpipe"),
                           {"submit", "--models", models_dir().string(), "--model", "fashion",
                            "--idle-timeout", "120", "-o", results.string(), inputs.dir.path().string()},
                           dir.path() / "publisher.log", from_file);
    check_no_command_line_holds(secret);  // the publisher too, while it runs (or is gone: nothing to leak)
    REQUIRE(wait_for([&] { return !publisher.running(); }, std::chrono::seconds(300)));
    CHECK(publisher.stop() == 3);  // the input folder's broken files each get an error line
    publisher_log = read_text_file(dir.path() / "publisher.log");

    for (const auto* role : {"feature", "classify"}) {
      CHECK(cluster.worker(role).stop() == 0);
      worker_logs += read_text_file(cluster.log_of(role));
    }
  }
  CHECK(lines_by_image(read_text_file(results)).size() == inputs.total());

  // The logs did name the broker, user and all, with the password hidden, and did see the drop.
  CHECK_THAT(worker_logs, Catch::Contains("amqp://" + user + ":***@" + host_port));
  CHECK_THAT(worker_logs, Catch::Contains("reconnecting"));
  CHECK_THAT(worker_logs + publisher_log, !Catch::Contains(secret));
  CHECK_THAT(read_text_file(results), !Catch::Contains(secret));
  // The search itself works: the file the password came from does hold it.
  CHECK_THAT(read_text_file(password_file), Catch::Contains(secret));
  // The broker's own log, when the test knows where it is.
  if (const char* broker_dir = std::getenv("IMGPIPE_BROKER_DIR");
      broker_dir != nullptr && *broker_dir != '\0') {
    for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(broker_dir) / "log")) {
      INFO(entry.path());
      CHECK_THAT(read_text_file(entry.path()), !Catch::Contains(secret));
    }
  }
}
