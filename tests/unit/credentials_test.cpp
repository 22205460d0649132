// Where passwords may come from: never the command line; the environment, or a file beside the URL.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "imgpipe/ops/credentials.hpp"
#include "imgpipe/transport/amqp/broker.hpp"
#include "imgpipe/worker/run_worker.hpp"
#include "test_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;

namespace {
std::filesystem::path password_file(const TempDir& dir, const std::string& content) {
  const auto file = dir.path() / "password";
  std::ofstream(file, std::ios::binary) << content;
  return file;
}
}  // namespace

TEST_CASE("a URL has a password when its userinfo has a colon, wherever the last '@' is",
          "[unit][credentials]") {
  CHECK(url_has_password("amqp://user:secret@host:5672/"));
  CHECK(url_has_password("amqps://user:@host/"));          // an empty password is still given
  CHECK(url_has_password("amqp://user:p@ss@host/vhost"));  // a raw '@' inside the password
  CHECK(url_has_password("http://guest:guest@127.0.0.1:15672/"));
  CHECK_FALSE(url_has_password("amqp://user@host:5672/"));
  CHECK_FALSE(url_has_password("amqp://host:5672/"));
  CHECK_FALSE(
      url_has_password("amqp://host:5672/v?cacertfile=/a:b@c"));  // no userinfo: '@' past the authority
  CHECK_FALSE(url_has_password("not a url"));
}

TEST_CASE("a password on the command line is refused with a message that says where it goes instead",
          "[unit][credentials]") {
  SecretUrlSources sources;
  sources.command_line = "amqp://imgpipe:hunter2-distinctive@rabbit:5672/";
  try {
    resolve_secret_url(broker_url_option(), sources, kDefaultBroker);
    FAIL("a password on the command line was accepted");
  } catch (const CredentialError& error) {
    const std::string message = error.what();
    CHECK_THAT(message, Catch::Contains("--broker must not carry a password") &&
                            Catch::Contains("IMGPIPE_BROKER environment variable") &&
                            Catch::Contains("--broker-password-file") &&
                            Catch::Contains("IMGPIPE_BROKER_PASSWORD_FILE"));
    CHECK_THAT(message, !Catch::Contains("hunter2"));
  }
  sources.command_line = "http://admin:pw@rabbit:15672/";
  CHECK_THROWS_WITH(resolve_secret_url(management_url_option(), sources, ""),
                    Catch::Contains("--management must not carry a password") &&
                        Catch::Contains("IMGPIPE_MANAGEMENT") &&
                        Catch::Contains("--management-password-file"));
}

TEST_CASE("the environment may carry a password, and the command line wins over it when it has none",
          "[unit][credentials]") {
  SecretUrlSources sources;
  sources.environment = "amqp://imgpipe:from-env@rabbit:5672/";
  CHECK(resolve_secret_url(broker_url_option(), sources, kDefaultBroker) ==
        "amqp://imgpipe:from-env@rabbit:5672/");
  sources.command_line = "amqp://127.0.0.1:1/";
  CHECK(resolve_secret_url(broker_url_option(), sources, kDefaultBroker) == "amqp://127.0.0.1:1/");
  CHECK(resolve_secret_url(broker_url_option(), {}, kDefaultBroker) == kDefaultBroker);
}

TEST_CASE("a password file supplies the password of a URL that names only the user", "[unit][credentials]") {
  TempDir dir;
  SecretUrlSources sources;
  sources.command_line = "amqps://imgpipe@rabbit:5671/prod?cacertfile=/etc/ca.pem";
  // Written the way `echo` and Kubernetes Secrets write it: one trailing newline, which is not part of it.
  sources.password_file = password_file(dir, "p@ss:w/rd%\n");
  const auto url = resolve_secret_url(broker_url_option(), sources, kDefaultBroker);
  const auto address = BrokerAddress::parse(url);
  CHECK(address.user == "imgpipe");
  CHECK(address.password == "p@ss:w/rd%");
  CHECK(address.host == "rabbit");
  CHECK(address.vhost == "prod");
  CHECK(address.ca_file == "/etc/ca.pem");
  CHECK(address.redacted() == "amqps://imgpipe:***@rabbit:5671/prod");

  sources.command_line.reset();
  sources.environment = "amqp://imgpipe@rabbit/";
  CHECK(BrokerAddress::parse(resolve_secret_url(broker_url_option(), sources, kDefaultBroker)).password ==
        "p@ss:w/rd%");
}

TEST_CASE(
    "a password file is refused when it conflicts, names no user, or is empty, unreadable or multi-line",
    "[unit][credentials]") {
  TempDir dir;
  SecretUrlSources sources;
  sources.password_file = password_file(dir, "secret\n");
  sources.environment = "amqp://imgpipe:env-secret@rabbit/";
  CHECK_THROWS_AS(resolve_secret_url(broker_url_option(), sources, kDefaultBroker), CredentialError);
  CHECK_THROWS_WITH(
      resolve_secret_url(broker_url_option(), sources, kDefaultBroker),
      Catch::Contains("IMGPIPE_BROKER already has a password") && !Catch::Contains("env-secret"));
  sources.environment = "amqp://rabbit:5672/";
  CHECK_THROWS_WITH(resolve_secret_url(broker_url_option(), sources, kDefaultBroker),
                    Catch::Contains("needs a user name"));

  sources.environment = "amqp://imgpipe@rabbit/";
  sources.password_file = password_file(dir, "\n");
  CHECK_THROWS_WITH(resolve_secret_url(broker_url_option(), sources, kDefaultBroker),
                    Catch::Contains("is empty"));
  sources.password_file = password_file(dir, "one\ntwo\n");
  CHECK_THROWS_WITH(resolve_secret_url(broker_url_option(), sources, kDefaultBroker),
                    Catch::Contains("more than one line") && !Catch::Contains("one\ntwo"));
  sources.password_file = dir.path() / "missing";
  CHECK_THROWS_WITH(resolve_secret_url(broker_url_option(), sources, kDefaultBroker),
                    Catch::Contains("cannot read the password file " + (dir.path() / "missing").string()));
}

TEST_CASE("a password file supplies the password of every broker of a list, and a list on the command line "
          "with a password anywhere is refused",
          "[unit][credentials][failover]") {
  TempDir dir;
  SecretUrlSources sources;
  sources.command_line = "amqp://imgpipe@rabbit-0,rabbit-1:5673/prod,amqps://imgpipe@rabbit-2/prod";
  sources.password_file = password_file(dir, "p,a@ss\n");
  const auto list = BrokerList::parse(resolve_secret_url(broker_url_option(), sources, kDefaultBroker));
  REQUIRE(list.size() == 3);
  for (const auto& node : list.nodes) {
    CHECK(node.user == "imgpipe");
    CHECK(node.password == "p,a@ss");
  }
  CHECK(list.nodes[2].tls);
  CHECK(list.redacted().find("p,a@ss") == std::string::npos);

  sources.command_line = "amqp://imgpipe@rabbit-0/prod,amqp://rabbit-1/prod";  // the second names no user
  CHECK_THROWS_AS(resolve_secret_url(broker_url_option(), sources, kDefaultBroker), CredentialError);

  SecretUrlSources typed;
  typed.command_line = "amqp://imgpipe@rabbit-0/prod,amqp://imgpipe:hunter2@rabbit-1/prod";
  CHECK_THROWS_AS(resolve_secret_url(broker_url_option(), typed, kDefaultBroker), CredentialError);
}
