// BrokerAddress: what the workers accept in --broker and how they print it in logs.
#include <catch2/catch.hpp>

#include "imgpipe/ops/credentials.hpp"
#include "imgpipe/transport/amqp/broker.hpp"

#include <stdexcept>
#include <string>

using imgpipe::BrokerAddress;

TEST_CASE("a full amqp URL gives host, port, credentials and vhost", "[broker][url]") {
  const auto address = BrokerAddress::parse("amqp://worker:s3cret@10.0.0.7:35672/pipeline");
  CHECK(address.host == "10.0.0.7");
  CHECK(address.port == 35672);
  CHECK(address.user == "worker");
  CHECK(address.password == "s3cret");
  CHECK(address.vhost == "pipeline");
  CHECK_FALSE(address.tls);
}

TEST_CASE("missing URL parts take the AMQP defaults", "[broker][url]") {
  const auto plain = BrokerAddress::parse("amqp://rabbit");
  CHECK(plain.host == "rabbit");
  CHECK(plain.port == 5672);
  CHECK(plain.user == "guest");
  CHECK(plain.password == "guest");
  CHECK(plain.vhost == "/");

  CHECK(BrokerAddress::parse("amqp://guest:guest@127.0.0.1:35672/").vhost == "/");
  CHECK(BrokerAddress::parse("amqp://").host == "localhost");
  CHECK(BrokerAddress::parse("amqp://someone@rabbit").password.empty());

  const auto tls = BrokerAddress::parse("amqps://broker.example/prod");
  CHECK(tls.tls);
  CHECK(tls.port == 5671);
  CHECK(tls.vhost == "prod");
  CHECK(tls.ca_file == "/etc/ssl/certs/ca-certificates.crt");
}

TEST_CASE("user, password and vhost are percent-decoded", "[broker][url]") {
  const auto address = BrokerAddress::parse(
      "amqps://us%40er:p%3Aa%2Fss%25@broker.example:1234/%2f?cacertfile=%2Fetc%2Fca.pem");
  CHECK(address.user == "us@er");
  CHECK(address.password == "p:a/ss%");
  CHECK(address.vhost == "/");
  CHECK(address.ca_file == "/etc/ca.pem");
  CHECK(address.port == 1234);

  const auto ipv6 = BrokerAddress::parse("amqp://[::1]:5673/team%2Fa");
  CHECK(ipv6.host == "::1");
  CHECK(ipv6.port == 5673);
  CHECK(ipv6.vhost == "team/a");
}

TEST_CASE("malformed URLs are rejected with the reason", "[broker][url]") {
  const auto reason = [](const std::string& url) {
    try {
      BrokerAddress::parse(url);
    } catch (const std::invalid_argument& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  using Catch::Matchers::Contains;
  CHECK_THAT(reason("http://rabbit/"), Contains("scheme"));
  CHECK_THAT(reason("rabbit:5672"), Contains("scheme"));
  CHECK_THAT(reason("amqp://rabbit:0/"), Contains("port"));
  CHECK_THAT(reason("amqp://rabbit:65536/"), Contains("port"));
  CHECK_THAT(reason("amqp://rabbit:56x2/"), Contains("port"));
  CHECK_THAT(reason("amqp://rabbit:/"), Contains("port"));
  CHECK_THAT(reason("amqp://rabbit/a/b"), Contains("%2f"));
  CHECK_THAT(reason("amqp://rabbit/%zz"), Contains("percent-escape"));
  CHECK_THAT(reason("amqp://rabbit/%4"), Contains("percent-escape"));
  CHECK_THAT(reason("amqp://[::1/"), Contains("IPv6"));
  CHECK_THAT(reason("amqp://:pw@rabbit/"), Contains("user"));
  CHECK_THAT(reason("amqps://rabbit/?verify=verify_none"), Contains("verify"));
  CHECK_THAT(reason("amqp://rabbit/?cacertfile=/ca.pem"), Contains("amqps"));
  CHECK_THAT(reason("amqp://rabbit/#frag"), Contains("fragment"));
}

TEST_CASE("error messages and redacted URLs never show the password", "[broker][url]") {
  try {
    BrokerAddress::parse("amqp://worker:hunter2@rabbit:99999/");
    FAIL("a bad port was accepted");
  } catch (const std::invalid_argument& error) {
    CHECK(std::string(error.what()).find("hunter2") == std::string::npos);
  }
  CHECK(BrokerAddress::parse("amqp://guest:guest@127.0.0.1:35672/").redacted() ==
        "amqp://guest:***@127.0.0.1:35672/");
  CHECK(BrokerAddress::parse("amqps://u:p@[::1]/a%2Fb?cacertfile=/ca.pem").redacted() ==
        "amqps://u:***@[::1]:5671/a%2Fb");
}

TEST_CASE("each job has its own result queue name", "[broker][url]") {
  CHECK(imgpipe::queues::results_for("job-42") == "imgpipe.results.job-42");
}

using imgpipe::BrokerList;

TEST_CASE("one URL with a host list gives one node per host, sharing credentials, vhost and TLS",
          "[broker][url][failover]") {
  const auto list = BrokerList::parse("amqps://worker:s3cret@rabbit-0:5673,rabbit-1,[::1]:5674/prod?cacertfile=/ca.pem");
  REQUIRE(list.size() == 3);
  CHECK(list.nodes[0].host == "rabbit-0");
  CHECK(list.nodes[0].port == 5673);
  CHECK(list.nodes[1].host == "rabbit-1");
  CHECK(list.nodes[1].port == 5671);  // the scheme's port where the host names none
  CHECK(list.nodes[2].host == "::1");
  CHECK(list.nodes[2].port == 5674);
  for (const auto& node : list.nodes) {
    CHECK(node.user == "worker");
    CHECK(node.password == "s3cret");
    CHECK(node.vhost == "prod");
    CHECK(node.tls);
    CHECK(node.ca_file == "/ca.pem");
  }
  CHECK(list.node_names() == "rabbit-0:5673, rabbit-1:5671, [::1]:5674");
}

TEST_CASE("a comma-separated list of full URLs gives one node per URL, each with its own parts",
          "[broker][url][failover]") {
  const auto list = BrokerList::parse("amqp://a:pw@h1:5672/v1,amqps://b@h2/v2,amqp://h3,h4:5680");
  REQUIRE(list.size() == 4);
  CHECK(list.nodes[0].node() == "h1:5672");
  CHECK(list.nodes[0].vhost == "v1");
  CHECK(list.nodes[0].password == "pw");
  CHECK(list.nodes[1].node() == "h2:5671");
  CHECK(list.nodes[1].user == "b");
  CHECK(list.nodes[1].tls);
  CHECK(list.nodes[2].node() == "h3:5672");
  CHECK(list.nodes[2].user == "guest");
  CHECK(list.nodes[3].node() == "h4:5680");
  CHECK(BrokerList::parse("amqp://guest:guest@127.0.0.1:35672/").size() == 1);
}

TEST_CASE("a comma in a password does not split the list, and redacted lists hide every password",
          "[broker][url][failover]") {
  const auto list = BrokerList::parse("amqp://u:pa,ss@h1,h2/v");
  REQUIRE(list.size() == 2);
  CHECK(list.nodes[0].password == "pa,ss");
  CHECK(list.nodes[1].host == "h2");
  CHECK(list.redacted() == "amqp://u:***@h1:5672/v,amqp://u:***@h2:5672/v");
  CHECK(list.redacted().find("pa,ss") == std::string::npos);
}

TEST_CASE("malformed broker lists are rejected with the reason and without the password",
          "[broker][url][failover]") {
  const auto reason = [](const std::string& text) {
    try {
      BrokerList::parse(text);
    } catch (const std::invalid_argument& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  using Catch::Matchers::Contains;
  CHECK_THAT(reason("amqp://u:hunter2@h1,,h2/"), Contains("empty host"));
  CHECK_THAT(reason("amqp://u:hunter2@h1,/"), Contains("empty host"));
  CHECK_THAT(reason("amqp://u:hunter2@h1,h2:0/"), Contains("port"));
  CHECK_THAT(reason("amqp://u:hunter2@h1/v,h2"), Contains("list brokers before the vhost"));
  CHECK_THAT(reason("amqp://h1/,,amqp://h2/"), Contains("vhost"));
  CHECK_THAT(reason(""), Contains("empty entry"));
  CHECK_THAT(reason("amqp://h1/,http://h2/"), Contains("scheme"));
  for (const auto& text : {"amqp://u:hunter2@h1,,h2/", "amqp://u:hunter2@h1/v,h2", "amqp://u:hunter2@h1,h2:0/"})
    CHECK(reason(text).find("hunter2") == std::string::npos);
  // One broker where one is expected: a list there is refused, not read as a host named "h1,h2".
  CHECK_THROWS_WITH(BrokerAddress::parse("amqp://h1,h2/"), Contains("host list"));
}

TEST_CASE("a broker list is one on the command line too: a password in any of its URLs is refused",
          "[broker][url][failover]") {
  CHECK(imgpipe::url_has_password("amqp://u@h1/v,amqp://u:pw@h2/v"));
  CHECK(imgpipe::url_has_password("amqp://u:pw@h1,h2/v"));
  CHECK_FALSE(imgpipe::url_has_password("amqp://u@h1,h2/v,amqp://u@h3/v"));
}
