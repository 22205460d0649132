// BrokerAddress: what the workers accept in --broker and how they print it in logs.
#include <catch2/catch.hpp>

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
