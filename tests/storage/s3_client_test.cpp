// The S3 client against a real S3-compatible server (s3s-fs, started by scripts/test): every request signed
// with SigV4 by libcurl, keys that SigV4's encoding rules make hard, pagination, and each way a fetch fails.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <set>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imgpipe/storage/s3_client.hpp"
#include "imgpipe/storage/s3_error.hpp"
#include "imgpipe/storage/s3_request.hpp"
#include "imgpipe/storage/s3_uri.hpp"
#include "test_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;

namespace {

S3Config server_config() {
  S3Config config;
  config.endpoint = s3_endpoint();
  config.credentials = {s3_access_key(), s3_secret_key(), ""};
  return config;
}

std::vector<std::uint8_t> bytes_of(const std::string& text) {
  return {text.begin(), text.end()};
}

std::vector<ListedObject> list_all(const S3Client& client, const std::string& bucket,
                                   const std::string& prefix, std::size_t* pages = nullptr) {
  std::vector<ListedObject> all;
  client.list_objects(bucket, prefix, [&](std::vector<ListedObject>&& page) {
    if (pages != nullptr) ++*pages;
    for (auto& object : page) all.push_back(std::move(object));
  });
  return all;
}

// The error text of `action`, which must throw S3Error.
template <typename Action>
std::string s3_error_of(Action&& action) {
  try {
    action();
  } catch (const S3Error& error) {
    return error.what();
  }
  FAIL("no S3Error was thrown");
  return "";
}

// A loopback port with nothing listening on it (bound, then closed).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace

TEST_CASE("keys with spaces, '+', '%', '=', '&', '~' and unicode round-trip through signed PUT, LIST and GET",
          "[storage][sigv4]") {
  const S3Client client(server_config());
  const std::string bucket = unique_bucket("keys");
  client.create_bucket(bucket);
  // Each of these breaks a signature computed from a differently encoded path or query: '+' is a space to
  // form decoders, '%' must not be decoded twice, '=' and '&' split queries, unicode is encoded byte by byte.
  const std::vector<std::string> keys = {"photos/with space.jpg",
                                         "photos/plus+sign.jpg",
                                         "photos/percent%41literal.jpg",
                                         "photos/a=b&c=d.jpg",
                                         "photos/tilde~under_score-dash.jpg",
                                         "photos/unicodé/日本の写真.jpg",
                                         "photos/deep/a/b/c.jpg",
                                         "photos/(parens) [brackets] 'quote'!.jpg"};
  std::map<std::string, std::string> etags;
  for (const auto& key : keys) etags[key] = client.put_object(bucket, key, bytes_of("content of " + key));

  const auto listed = list_all(client, bucket, "photos/");
  std::vector<std::string> listed_keys;
  for (const auto& object : listed) {
    listed_keys.push_back(object.key);
    CHECK(object.size == ("content of " + object.key).size());
    INFO(object.key);
    // s3s-fs lists no ETags (AWS and MinIO do): the job then asks each object's (HeadObject).
    CHECK((object.etag.empty() || object.etag == etags[object.key]));
    CHECK(client.head_object(bucket, object.key).etag == etags[object.key]);
  }
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  CHECK(listed_keys == sorted);

  for (const auto& object : listed) {
    INFO(object.key);
    const auto bytes = client.fetch({bucket, object.key, etags[object.key], object.size}, 1 << 20);
    CHECK(std::string(bytes.begin(), bytes.end()) == "content of " + object.key);
    CHECK(client.head_object(bucket, object.key).size == object.size);
  }
  // A prefix with the same hard characters selects exactly its keys (the prefix travels in the query).
  const auto unicode = list_all(client, bucket, "photos/unicodé/");
  REQUIRE(unicode.size() == 1);
  CHECK(unicode[0].key == "photos/unicodé/日本の写真.jpg");
  const auto plus = list_all(client, bucket, "photos/plus+");
  REQUIRE(plus.size() == 1);
  CHECK(plus[0].key == "photos/plus+sign.jpg");
}

TEST_CASE("a listing longer than a page is read page by page, every key once and in order",
          "[storage][sigv4]") {
  S3Config config = server_config();
  config.list_page_size = 7;  // 23 keys: four pages, continuation tokens holding '/', ' ' and '+'
  const S3Client client(config);
  const std::string bucket = unique_bucket("pages");
  client.create_bucket(bucket);
  std::set<std::string> keys;
  for (int i = 0; i < 23; ++i) {
    const std::string key = "in/" + std::string(i % 2 ? "odd +" : "even/") + std::to_string(100 + i) + ".png";
    keys.insert(key);
    client.put_object(bucket, key, bytes_of(key));
  }
  client.put_object(bucket, "out/not-listed.png", bytes_of("x"));
  std::size_t pages = 0;
  const auto listed = list_all(client, bucket, "in/", &pages);
  CHECK(pages == 4);
  std::vector<std::string> listed_keys;
  for (const auto& object : listed) listed_keys.push_back(object.key);
  CHECK(listed_keys == std::vector<std::string>(keys.begin(), keys.end()));
}

TEST_CASE("a fetch fails with the object's URI and the server's reason: missing, changed, too large",
          "[storage]") {
  const S3Client client(server_config());
  const std::string bucket = unique_bucket("fetch");
  client.create_bucket(bucket);
  const std::string etag = client.put_object(bucket, "cat.jpg", bytes_of("version one"));
  const ObjectRef listed{bucket, "cat.jpg", etag, 11};

  SECTION("missing") {
    const std::string error = s3_error_of([&] { client.fetch({bucket, "dog.jpg", "", 0}, 1 << 20); });
    CHECK_THAT(error, Catch::StartsWith("s3://" + bucket + "/dog.jpg: 404 NoSuchKey"));
    const std::string head = s3_error_of([&] { client.head_object(bucket, "dog.jpg"); });
    CHECK_THAT(head, Catch::StartsWith("s3://" + bucket + "/dog.jpg: 404"));
  }
  SECTION("no such bucket") {
    const std::string error = s3_error_of([&] { list_all(client, "imgpipe-no-such-bucket", ""); });
    CHECK_THAT(error, Catch::StartsWith("s3://imgpipe-no-such-bucket/: 404 NoSuchBucket"));
  }
  SECTION("changed after it was listed (its ETag)") {
    client.put_object(bucket, "cat.jpg", bytes_of("version two!"));
    const std::string error = s3_error_of([&] { client.fetch(listed, 1 << 20); });
    CHECK_THAT(error, Catch::StartsWith("s3://" + bucket + "/cat.jpg: 412 PreconditionFailed") &&
                          Catch::Contains("changed after the job listed it"));
  }
  SECTION("over the size limit, by its listed size or by what the server sends") {
    const std::string by_listing = s3_error_of([&] { client.fetch(listed, 10); });
    CHECK(by_listing == "s3://" + bucket + "/cat.jpg: object of 11 bytes is over the limit of 10 bytes");
    // A reference that understates the size: the answer's length stops the transfer.
    const std::string by_answer = s3_error_of([&] { client.fetch({bucket, "cat.jpg", etag, 5}, 10); });
    CHECK_THAT(by_answer, Catch::Contains("over the limit of 10 bytes"));
  }
  SECTION("the listed version itself is fetched") {
    const auto bytes = client.fetch(listed, 11);
    CHECK(std::string(bytes.begin(), bytes.end()) == "version one");
  }
}

TEST_CASE("a wrong secret key, or none, is refused by the server and never appears in the error",
          "[storage][credentials]") {
  const S3Client good(server_config());
  const std::string bucket = unique_bucket("auth");
  good.create_bucket(bucket);
  const std::string etag = good.put_object(bucket, "cat.jpg", bytes_of("meow"));

  S3Config wrong = server_config();
  wrong.credentials.secret_access_key = "not-the-secret-" + s3_secret_key().substr(0, 4) + "x";
  const std::string error = s3_error_of([&] {
    S3Client(wrong).fetch({bucket, "cat.jpg", etag, 4}, 1 << 20);
  });
  CHECK_THAT(error, Catch::StartsWith("s3://" + bucket + "/cat.jpg: 403"));
  CHECK_THAT(error,
             !Catch::Contains(wrong.credentials.secret_access_key) && !Catch::Contains(s3_secret_key()));

  S3Config anonymous = server_config();
  anonymous.credentials = {};
  CHECK_THAT(s3_error_of([&] { list_all(S3Client(anonymous), bucket, ""); }),
             Catch::StartsWith("s3://" + bucket + "/: 403"));
}

TEST_CASE("a server that cannot be reached is retried with backoff, then named in the error", "[storage]") {
  S3Config config = server_config();
  config.endpoint = "http://127.0.0.1:" + std::to_string(free_port());
  config.attempts = 3;
  config.first_backoff = std::chrono::milliseconds(100);  // then 200: at least 150 ms with the jitter
  const auto start = std::chrono::steady_clock::now();
  const std::string error = s3_error_of([&] {
    S3Client(config).fetch({"some-bucket", "a.jpg", "\"e\"", 1}, 100);
  });
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(150));
  CHECK_THAT(error, Catch::StartsWith("s3://some-bucket/a.jpg: ") && Catch::EndsWith("(after 3 attempts)"));
}

TEST_CASE("a server error (5xx) is retried with backoff, then reported with its code", "[storage]") {
  S3Config config = server_config();
  config.attempts = 3;
  config.first_backoff = std::chrono::milliseconds(100);
  const S3Client client(config);
  const std::string bucket = unique_bucket("retry");
  client.create_bucket(bucket);
  // s3s-fs keeps objects as files: "folder/inner" makes "folder" a directory, and a GET of "folder" fails
  // inside the server (500 InternalError) on every attempt.
  client.put_object(bucket, "folder/inner.jpg", bytes_of("x"));
  const auto start = std::chrono::steady_clock::now();
  const std::string error = s3_error_of([&] { client.fetch({bucket, "folder", "", 0}, 100); });
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(150));
  CHECK_THAT(error, Catch::StartsWith("s3://" + bucket + "/folder: 500 InternalError") &&
                        Catch::EndsWith("after 3 attempts)"));
}

TEST_CASE("S3 URLs: keys encoded as SigV4 signs them, path-style or virtual-hosted", "[storage][sigv4]") {
  CHECK(s3_encode("a b+c%d/é~_-.", true) == "a%20b%2Bc%25d/%C3%A9~_-.");
  CHECK(s3_encode("a/b", false) == "a%2Fb");
  CHECK(s3_query({{"prefix", "x y/+"}, {"list-type", "2"}, {"continuation-token", "a=b"}}) ==
        "continuation-token=a%3Db&list-type=2&prefix=x%20y%2F%2B");

  S3Config minio;
  minio.endpoint = "http://127.0.0.1:9000";
  CHECK(s3_url(minio, "bucket", "dir/a b.jpg") == "http://127.0.0.1:9000/bucket/dir/a%20b.jpg");
  CHECK(s3_url(minio, "bucket", "", "list-type=2") == "http://127.0.0.1:9000/bucket?list-type=2");
  minio.path_style = false;
  CHECK(s3_url(minio, "bucket", "k") == "http://bucket.127.0.0.1:9000/k");

  S3Config aws;
  aws.region = "eu-west-1";
  CHECK(s3_url(aws, "bucket", "k+1") == "https://bucket.s3.eu-west-1.amazonaws.com/k%2B1");
  aws.path_style = true;
  CHECK(s3_url(aws, "bucket", "k") == "https://s3.eu-west-1.amazonaws.com/bucket/k");

  S3Config bad;
  bad.endpoint = "ftp://host/";
  CHECK_THROWS_AS(s3_url(bad, "bucket", "k"), std::invalid_argument);
  bad.endpoint = "http://user:secret@host/";
  CHECK_THROWS_WITH(s3_url(bad, "bucket", "k"),
                    Catch::Contains("must not hold credentials") && !Catch::Contains("secret"));

  CHECK(parse_s3_uri("s3://my-bucket/a/b c.jpg").key == "a/b c.jpg");
  CHECK(parse_s3_uri("s3://my-bucket").key.empty());
  CHECK_THROWS_WITH(parse_s3_uri("s3://My_Bucket/x"), Catch::Contains("a bucket name is 3 to 63"));
}
