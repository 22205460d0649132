// amqps:// against a real RabbitMQ TLS listener with a throwaway CA (tests/support/make-test-certs). The
// spec starts its own node, beside the test broker, and stops it whatever happens.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "e2e_support.hpp"
#include "imgpipe/transport/amqp/broker.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"

using namespace imgpipe;
using namespace imgpipe::test;

namespace {

// A RabbitMQ node on ports derived from `port` (scripts/broker) whose TLS listener (port + 2000) presents
// a certificate for "localhost" signed by a fresh test CA. Stopped and removed on destruction, also when
// its start fails half-way: the stopper is a member, so it is destroyed even when the constructor throws.
class TlsBroker {
 public:
  explicit TlsBroker(int port) : port_(port) {
    run(source_dir() / "tests/support/make-test-certs", {certs().string()}, "make-test-certs");
    run(script(), {"start", node_dir().string()}, "scripts/broker start");
  }
  int plain_port() const { return port_; }
  int tls_port() const { return port_ + 2000; }
  std::filesystem::path certs() const { return dir_.path() / "certs"; }
  std::filesystem::path node_dir() const { return dir_.path() / "node"; }
  // The node's own log: who logged in, on which port.
  std::string log() const {
    std::string text;
    for (const auto& entry : std::filesystem::directory_iterator(node_dir() / "log")) {
      if (entry.path().extension() == ".log") text += read_text_file(entry.path());
    }
    return text;
  }

 private:
  static std::filesystem::path script() { return source_dir() / "scripts/broker"; }
  void run(const std::filesystem::path& program, const std::vector<std::string>& arguments,
           const std::string& what) const {
    std::string command = "IMGPIPE_BROKER_PORT=" + std::to_string(port_) + " IMGPIPE_BROKER_TLS_DIR='" +
                          certs().string() + "' '" + program.string() + "'";
    for (const auto& argument : arguments) command += " '" + argument + "'";
    const auto output = dir_.path() / "command.log";
    command += " >'" + output.string() + "' 2>&1";
    if (std::system(command.c_str()) != 0) FAIL(what + " failed:\n" + read_text_file(output));
  }

  struct Stopper {
    const TlsBroker* broker;
    ~Stopper() {
      const std::string command = "IMGPIPE_BROKER_PORT=" + std::to_string(broker->port_) + " '" +
                                  script().string() + "' stop '" + broker->node_dir().string() +
                                  "' >/dev/null 2>&1";
      if (std::system(command.c_str()) != 0) WARN("could not stop the TLS test broker " + command);
    }
  };

  int port_;
  TempDir dir_{"imgpipe-tls"};
  Stopper stopper_{this};
};

// Ports for the TLS node: IMGPIPE_TEST_TLS_BROKER_PORT, or the test broker's AMQP port + 2000, whose
// derived ports (scripts/broker) do not overlap the test broker's.
int tls_node_port() {
  if (const char* port = std::getenv("IMGPIPE_TEST_TLS_BROKER_PORT"); port != nullptr && *port != '\0') {
    return std::stoi(port);
  }
  return BrokerAddress::parse(broker_url()).port + 2000;
}

std::string amqps_url(const std::string& host, int port, const std::filesystem::path& ca) {
  return "amqps://guest:guest@" + host + ":" + std::to_string(port) + "/?cacertfile=" + ca.string();
}

BrokerOptions quick_options() {
  BrokerOptions options;
  options.connect_timeout = std::chrono::seconds(5);
  options.client_name = "imgpipe-tls-tests";
  return options;
}

// What opening one connection to `url` throws (empty when it connects).
std::string connect_error(const std::string& url) {
  try {
    BrokerSession session(BrokerAddress::parse(url), quick_options());
  } catch (const BrokerError& error) {
    return error.what();
  }
  return {};
}

std::size_t count_matches(const std::string& text, const std::regex& pattern) {
  return static_cast<std::size_t>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), pattern), std::sregex_iterator()));
}

}  // namespace

TEST_CASE(
    "amqps connects only to a broker whose certificate the CA signed for that host, never over plain AMQP",
    "[e2e][broker][tls]") {
  TlsBroker broker(tls_node_port());
  const auto ca = broker.certs() / "ca.pem";

  // The right CA and a host the certificate names: workers and publisher run a whole job over TLS.
  const std::string good = amqps_url("localhost", broker.tls_port(), ca);
  CHECK(connect_error(good).empty());
  InputFolder inputs(1);
  TempDir out;
  RunResult submitted;
  {
    Cluster cluster(true, {}, {}, {{"IMGPIPE_BROKER", good}});
    submitted = run_tool(
        worker_binary("imgpipe"),
        {"submit", "--models", models_dir().string(), "--model", "fashion", "--quiet", "--idle-timeout",
         "120", "-o", (out.path() / "results.jsonl").string(), inputs.dir.path().string()},
        600, {{"IMGPIPE_BROKER", good}});
    CHECK_THAT(read_text_file(cluster.log_of("feature")),
               Catch::Contains("via amqps://guest:***@localhost:" + std::to_string(broker.tls_port())));
  }
  INFO(submitted.err);
  CHECK(submitted.exit_code == 3);  // the input folder's broken files each get an error line
  CHECK(lines_by_image(read_text_file(out.path() / "results.jsonl")).size() == inputs.total());

  // A CA that did not sign the broker's certificate.
  const auto wrong_ca =
      connect_error(amqps_url("localhost", broker.tls_port(), broker.certs() / "other-ca.pem"));
  CHECK_THAT(wrong_ca,
             Catch::Contains("certificate verification failed") &&
                 Catch::Contains("not signed by a CA in " + (broker.certs() / "other-ca.pem").string()));
  // The user sees the same through the tool, at once: a certificate that does not verify is not retried.
  const auto refused = run_tool(
      worker_binary("imgpipe"), {"submit", "--quiet", inputs.dir.path().string()}, 120,
      {{"IMGPIPE_BROKER", amqps_url("localhost", broker.tls_port(), broker.certs() / "other-ca.pem")}});
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("certificate verification failed"));

  // The right CA, but an address the certificate does not name (its subjectAltName is DNS:localhost only).
  CHECK_THAT(connect_error(amqps_url("127.0.0.1", broker.tls_port(), ca)),
             Catch::Contains("certificate verification failed") &&
                 Catch::Contains("does not name host '127.0.0.1'"));

  // amqps:// to the plain AMQP port: the handshake fails, and the error says which port was tried.
  CHECK_THAT(connect_error(amqps_url("localhost", broker.plain_port(), ca)),
             Catch::Contains("TLS handshake failed") && Catch::Contains("plain AMQP port"));
  // A CA file that does not exist is named, not reported as a vague TLS error.
  CHECK_THAT(connect_error(amqps_url("localhost", broker.tls_port(), broker.certs() / "missing.pem")),
             Catch::Contains("cannot load CA file " + (broker.certs() / "missing.pem").string()));

  // No fallback: every login the node saw came over its TLS port, none over the plain one, although the
  // failed attempts above would have found a plain listener on plain_port(). Log lines read
  // "connection <0.983.0> (127.0.0.1:42768 -> 127.0.0.1:39760 - imgpipe-feature): user 'guest'
  // authenticated". RabbitMQ writes its log file with a delay: wait until the logins we know of show up.
  const auto logins_on = [&](const std::string& log, int port) {
    return count_matches(log, std::regex("-> 127\\.0\\.0\\.1:" + std::to_string(port) +
                                         "( - [^)]*)?\\): user '[^']*' authenticated"));
  };
  std::string log;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    log = broker.log();
  } while (logins_on(log, broker.tls_port()) < 4 && std::chrono::steady_clock::now() < deadline);
  INFO(log);
  CHECK(logins_on(log, broker.tls_port()) >= 4);  // the probe, two workers, the publisher
  CHECK(logins_on(log, broker.plain_port()) == 0);
}
