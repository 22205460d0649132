// A small S3 client (libcurl, AWS SigV4 by CURLOPT_AWS_SIGV4): what imgpipe needs of an object store and no
// more. Thread-safe; requests on one client reuse its connections. Every failure is an S3Error whose text
// starts with the s3:// URI it concerns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "imgpipe/messages/batch.hpp"
#include "imgpipe/storage/s3_config.hpp"

namespace imgpipe {

struct ListedObject {
  std::string key;
  std::string etag;
  std::uint64_t size = 0;
};

class S3Client {
 public:
  explicit S3Client(S3Config config);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Config& config() const;

  // ListObjectsV2 of every key under `prefix`, in the server's (lexicographic) order, page by page.
  void list_objects(const std::string& bucket, const std::string& prefix,
                    const std::function<void(std::vector<ListedObject>&&)>& on_page) const;

  // HeadObject: the object's current ETag and size.
  ListedObject head_object(const std::string& bucket, const std::string& key) const;

  // GetObject of exactly the version `object.etag` (If-Match; the answer's ETag is checked too, for servers
  // that ignore the condition), refusing more than `max_bytes`. Retries 5xx answers and network failures.
  std::vector<std::uint8_t> fetch(const ObjectRef& object, std::size_t max_bytes) const;

  // For tests and tools: PutObject (returns the new ETag), DeleteObject, CreateBucket (an existing one is
  // fine).
  std::string put_object(const std::string& bucket, const std::string& key,
                         std::span<const std::uint8_t> bytes) const;
  void remove_object(const std::string& bucket, const std::string& key) const;
  void create_bucket(const std::string& bucket) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imgpipe
