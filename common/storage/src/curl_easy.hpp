// Owners for libcurl's handles (private to storage: no curl header in a public one), and one HTTP exchange.
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace imgpipe::curl {

// curl_global_init, once per process, before the first handle (it is not thread-safe by itself).
void ensure_global_init();

class Easy {
 public:
  Easy();
  ~Easy() { curl_easy_cleanup(handle_); }
  Easy(Easy&& other) noexcept : handle_(other.handle_) { other.handle_ = nullptr; }
  Easy& operator=(Easy&&) = delete;
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;
  CURL* get() const { return handle_; }

 private:
  CURL* handle_;
};

class HeaderList {
 public:
  HeaderList() = default;
  ~HeaderList() { curl_slist_free_all(list_); }
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  void add(const std::string& line);
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

// What the network layer could not do (no HTTP answer): the code tells a retry from a final failure.
class TransferError : public std::runtime_error {
 public:
  TransferError(CURLcode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  CURLcode code() const { return code_; }
  bool retryable() const;

 private:
  CURLcode code_;
};

struct Request {
  const char* method = "GET";  // GET, HEAD, PUT
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::span<const std::uint8_t> body{};
  std::size_t max_body = SIZE_MAX;  // a longer answer body stops the transfer (Response::too_large)
};

struct Response {
  long status = 0;
  std::string etag;
  std::optional<std::uint64_t> content_length;
  std::vector<std::uint8_t> body;
  bool too_large = false;
};

struct Signing {
  std::string sigv4;  // "aws:amz:REGION:s3"; empty: unsigned
  std::string user;
  std::string password;
  long connect_timeout_s = 10;
  long stall_timeout_s = 30;
};

// One exchange on `easy` (reset first, so its connections are kept but no option of a previous request
// remains). Throws TransferError when no complete answer came; an HTTP error status is a Response.
Response perform(Easy& easy, const Request& request, const Signing& signing);

}  // namespace imgpipe::curl
