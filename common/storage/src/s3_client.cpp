#include "imgpipe/storage/s3_client.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "curl_easy.hpp"
#include "imgpipe/storage/s3_error.hpp"
#include "imgpipe/storage/s3_request.hpp"
#include "imgpipe/storage/s3_uri.hpp"
#include "xml_text.hpp"

namespace imgpipe {
namespace {

// Servers quote ETags ("abc"); some lists drop the quotes, weak ones start with W/. Compared without both.
std::string bare_etag(std::string_view etag) {
  if (etag.starts_with("W/")) etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return std::string(etag);
}

// S3's code for an answer without a body (HEAD), after the status.
std::string code_for_status(long status) {
  switch (status) {
    case 301:
      return "PermanentRedirect";
    case 400:
      return "BadRequest";
    case 403:
      return "Forbidden";
    case 404:
      return "NoSuchKey";
    case 412:
      return "PreconditionFailed";
    case 503:
      return "SlowDown";
    default:
      return status >= 500 ? "InternalError" : "HTTP error";
  }
}

S3Error http_error(const std::string& uri, const curl::Response& response, const std::string& note = {}) {
  const std::string_view body(reinterpret_cast<const char*>(response.body.data()), response.body.size());
  const std::string code = xml::text(body, "Code").value_or(code_for_status(response.status));
  std::string message = xml::text(body, "Message").value_or("");
  if (!note.empty()) message = message.empty() ? note : message + "; " + note;
  return S3Error(uri + ": " + std::to_string(response.status) + " " + code +
                     (message.empty() ? "" : " (" + message + ")"),
                 response.status, code);
}

bool retryable(long status) {
  return status >= 500 || status == 429;
}

}  // namespace

struct S3Client::Impl {
  S3Config config;
  curl::Signing signing;
  std::mutex mutex;
  std::vector<curl::Easy> idle;  // handles keep their connections between requests

  explicit Impl(S3Config c) : config(std::move(c)) {
    curl::ensure_global_init();
    if (!config.credentials.anonymous()) {
      signing.sigv4 = "aws:amz:" + config.region + ":s3";
      signing.user = config.credentials.access_key_id;
      signing.password = config.credentials.secret_access_key;
    }
    signing.connect_timeout_s = static_cast<long>(config.connect_timeout.count());
    signing.stall_timeout_s = static_cast<long>(config.stall_timeout.count());
    s3_url(config, "probe", "");  // a bad endpoint fails here, once, not on every request
  }

  curl::Easy take() {
    std::lock_guard lock(mutex);
    if (idle.empty()) return curl::Easy();
    curl::Easy easy = std::move(idle.back());
    idle.pop_back();
    return easy;
  }

  void give_back(curl::Easy&& easy) {
    std::lock_guard lock(mutex);
    if (idle.size() < 16) idle.push_back(std::move(easy));
  }

  // One request, retried with exponential backoff and jitter on 5xx, 429 and network failures. Returns the
  // last answer, whatever its status; throws S3Error when none came.
  curl::Response exchange(const std::string& uri, curl::Request request) {
    request.headers.push_back("x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (!config.credentials.session_token.empty()) {
      request.headers.push_back("x-amz-security-token: " + config.credentials.session_token);
    }
    thread_local std::minstd_rand jitter(std::random_device{}());
    auto backoff = config.first_backoff;
    const int attempts = std::max(1, config.attempts);
    for (int attempt = 1;; ++attempt) {
      curl::Easy easy = take();
      try {
        curl::Response response = curl::perform(easy, request, signing);
        give_back(std::move(easy));
        if (!retryable(response.status) || attempt == attempts) {
          if (retryable(response.status) && attempts > 1) {
            throw http_error(uri, response, "after " + std::to_string(attempts) + " attempts");
          }
          return response;
        }
      } catch (const curl::TransferError& error) {
        if (!error.retryable() || attempt == attempts) {
          throw S3Error(uri + ": " + error.what() +
                            (attempt > 1 ? " (after " + std::to_string(attempt) + " attempts)" : ""),
                        0, "");
        }
      }
      const double factor = std::uniform_real_distribution<double>(0.5, 1.5)(jitter);
      std::this_thread::sleep_for(
          std::chrono::duration<double, std::milli>(static_cast<double>(backoff.count()) * factor));
      backoff *= 2;
    }
  }
};

S3Client::S3Client(S3Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
S3Client::~S3Client() = default;

const S3Config& S3Client::config() const {
  return impl_->config;
}

void S3Client::list_objects(const std::string& bucket, const std::string& prefix,
                            const std::function<void(std::vector<ListedObject>&&)>& on_page) const {
  const std::string uri = s3_uri(bucket, prefix);
  std::string continuation;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> query = {
        {"list-type", "2"}, {"prefix", prefix}, {"max-keys", std::to_string(impl_->config.list_page_size)}};
    if (!continuation.empty()) query.emplace_back("continuation-token", continuation);
    curl::Request request;
    request.url = s3_url(impl_->config, bucket, "", s3_query(std::move(query)));
    const curl::Response response = impl_->exchange(uri, std::move(request));
    if (response.status != 200) throw http_error(uri, response);
    const std::string_view body(reinterpret_cast<const char*>(response.body.data()), response.body.size());
    std::vector<ListedObject> page;
    for (const std::string_view contents : xml::elements(body, "Contents")) {
      ListedObject object{xml::text(contents, "Key").value_or(""), xml::text(contents, "ETag").value_or(""),
                          0};
      try {
        object.size = std::stoull(xml::text(contents, "Size").value_or("0"));
      } catch (const std::exception&) {
        throw S3Error(uri + ": the listing gives " + object.key + " a size that is not a number", 200, "");
      }
      if (!object.key.empty()) page.push_back(std::move(object));
    }
    on_page(std::move(page));
    if (xml::text(body, "IsTruncated").value_or("false") != "true") return;
    continuation = xml::text(body, "NextContinuationToken").value_or("");
    if (continuation.empty()) {
      throw S3Error(uri + ": the listing is truncated but gives no continuation token", 200, "");
    }
  }
}

ListedObject S3Client::head_object(const std::string& bucket, const std::string& key) const {
  const std::string uri = s3_uri(bucket, key);
  curl::Request request;
  request.method = "HEAD";
  request.url = s3_url(impl_->config, bucket, key);
  const curl::Response response = impl_->exchange(uri, std::move(request));
  if (response.status != 200) throw http_error(uri, response);
  return {key, response.etag, response.content_length.value_or(0)};
}

std::vector<std::uint8_t> S3Client::fetch(const ObjectRef& object, std::size_t max_bytes) const {
  const std::string uri = s3_uri(object.bucket, object.key);
  auto too_large = [&](std::uint64_t size) {
    return S3Error(uri + ": object of " + std::to_string(size) + " bytes is over the limit of " +
                       std::to_string(max_bytes) + " bytes",
                   0, "");
  };
  if (object.size > max_bytes) throw too_large(object.size);
  curl::Request request;
  request.url = s3_url(impl_->config, object.bucket, object.key);
  if (!object.etag.empty()) request.headers.push_back("If-Match: " + object.etag);
  request.max_body = max_bytes;
  curl::Response response = impl_->exchange(uri, std::move(request));
  if (response.too_large) throw too_large(response.content_length.value_or(max_bytes + 1));
  const std::string changed = "the object changed after the job listed it, as version " + object.etag;
  if (response.status == 412) throw http_error(uri, response, changed);
  if (response.status != 200) throw http_error(uri, response);
  if (!object.etag.empty() && !response.etag.empty() && bare_etag(response.etag) != bare_etag(object.etag)) {
    throw S3Error(uri + ": 412 PreconditionFailed (" + changed + "; it is now " + response.etag + ")", 412,
                  "PreconditionFailed");
  }
  return std::move(response.body);
}

std::string S3Client::put_object(const std::string& bucket, const std::string& key,
                                 std::span<const std::uint8_t> bytes) const {
  const std::string uri = s3_uri(bucket, key);
  curl::Request request;
  request.method = "PUT";
  request.url = s3_url(impl_->config, bucket, key);
  request.body = bytes;
  request.headers.push_back("Content-Type: application/octet-stream");
  const curl::Response response = impl_->exchange(uri, std::move(request));
  if (response.status != 200) throw http_error(uri, response);
  return response.etag;
}

void S3Client::remove_object(const std::string& bucket, const std::string& key) const {
  const std::string uri = s3_uri(bucket, key);
  curl::Request request;
  request.method = "DELETE";
  request.url = s3_url(impl_->config, bucket, key);
  const curl::Response response = impl_->exchange(uri, std::move(request));
  if (response.status != 204 && response.status != 200) throw http_error(uri, response);
}

void S3Client::create_bucket(const std::string& bucket) const {
  const std::string uri = s3_uri(bucket, "");
  curl::Request request;
  request.method = "PUT";
  request.url = s3_url(impl_->config, bucket, "");
  const curl::Response response = impl_->exchange(uri, std::move(request));
  if (response.status == 200) return;
  const curl::Response& answer = response;
  const S3Error error = http_error(uri, answer);
  if (error.code() == "BucketAlreadyOwnedByYou" || error.code() == "BucketAlreadyExists") return;
  throw error;
}

}  // namespace imgpipe
