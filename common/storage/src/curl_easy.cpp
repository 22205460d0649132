#include "curl_easy.hpp"

#include <algorithm>
#include <cctype>
#include <mutex>

namespace imgpipe::curl {
namespace {

struct Transfer {
  Response* response;
  std::size_t max_body;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  auto& body = transfer.response->body;
  if (body.size() + bytes > transfer.max_body) {
    transfer.response->too_large = true;
    return 0;  // stops the transfer (CURLE_WRITE_ERROR)
  }
  body.insert(body.end(), data, data + bytes);
  return bytes;
}

std::string trimmed(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return std::string(text);
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  const std::string_view line(data, bytes);
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return bytes;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string value = trimmed(line.substr(colon + 1));
  if (name == "etag") transfer.response->etag = value;
  if (name == "content-length") {
    try {
      transfer.response->content_length = std::stoull(value);
    } catch (const std::exception&) {
      // An unreadable length is only a missed early refusal: the body's own size is still limited.
    }
    // Refused before the body is read, so an oversized object costs no transfer. HEAD answers carry the
    // object's length too, but no body.
    if (transfer.response->content_length && *transfer.response->content_length > transfer.max_body) {
      transfer.response->too_large = true;
      return 0;
    }
  }
  return bytes;
}

template <typename T>
void set(CURL* handle, CURLoption option, T value) {
  if (const CURLcode code = curl_easy_setopt(handle, option, value); code != CURLE_OK) {
    throw TransferError(code, std::string("libcurl refused an option: ") + curl_easy_strerror(code));
  }
}

}  // namespace

void ensure_global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("libcurl failed to initialise");
  });
}

Easy::Easy() : handle_(curl_easy_init()) {
  if (handle_ == nullptr) throw std::runtime_error("libcurl could not create a handle");
}

void HeaderList::add(const std::string& line) {
  curl_slist* grown = curl_slist_append(list_, line.c_str());
  if (grown == nullptr) throw std::bad_alloc();
  list_ = grown;
}

bool TransferError::retryable() const {
  switch (code_) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

Response perform(Easy& easy, const Request& request, const Signing& signing) {
  CURL* handle = easy.get();
  curl_easy_reset(handle);
  Response response;
  Transfer transfer{&response, request.max_body};
  HeaderList headers;
  // libcurl 7.88 signs every header of this list, even a removal such as "Expect:" that is never sent: the
  // server then computes another signature (403 SignatureDoesNotMatch). Only headers that are sent go here.
  for (const auto& line : request.headers) headers.add(line);
  char error_text[CURL_ERROR_SIZE] = {};

  set(handle, CURLOPT_URL, request.url.c_str());
  // Keys are sent as encoded: "a/../b" or "a//b" are names of objects, not paths to normalise.
  set(handle, CURLOPT_PATH_AS_IS, 1L);
  set(handle, CURLOPT_HTTPHEADER, headers.get());
  set(handle, CURLOPT_NOSIGNAL, 1L);
  set(handle, CURLOPT_ERRORBUFFER, error_text);
  set(handle, CURLOPT_CONNECTTIMEOUT, signing.connect_timeout_s);
  set(handle, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  set(handle, CURLOPT_LOW_SPEED_TIME, signing.stall_timeout_s);
  set(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  set(handle, CURLOPT_WRITEFUNCTION, on_body);
  set(handle, CURLOPT_WRITEDATA, &transfer);
  set(handle, CURLOPT_HEADERFUNCTION, on_header);
  set(handle, CURLOPT_HEADERDATA, &transfer);
  if (std::string_view(request.method) == "HEAD") {
    set(handle, CURLOPT_NOBODY, 1L);
  } else if (std::string_view(request.method) != "GET") {
    set(handle, CURLOPT_CUSTOMREQUEST, request.method);
    if (std::string_view(request.method) == "PUT") {
      // The body as POST fields (sent with the custom method): libcurl then has it whole, to sign it. Never
      // a null pointer, which would make libcurl read the body from stdin.
      static const char kEmpty[] = "";
      set(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      set(handle, CURLOPT_POSTFIELDS,
          request.body.empty() ? kEmpty : reinterpret_cast<const char*>(request.body.data()));
    }
  }
  if (!signing.sigv4.empty()) {
    set(handle, CURLOPT_AWS_SIGV4, signing.sigv4.c_str());
    set(handle, CURLOPT_USERNAME, signing.user.c_str());
    set(handle, CURLOPT_PASSWORD, signing.password.c_str());
  }
  const CURLcode code = curl_easy_perform(handle);
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response.status);
  const std::string failure = error_text[0] != '\0' ? std::string(error_text) : curl_easy_strerror(code);
  // Options point at this frame's buffers: drop them before leaving (the handle goes back to a pool).
  curl_easy_reset(handle);
  if (response.too_large) return response;
  if (code != CURLE_OK) throw TransferError(code, failure);
  return response;
}

}  // namespace imgpipe::curl
