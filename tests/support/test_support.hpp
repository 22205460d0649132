// Helpers shared by the specs: where the real test data lives and how to reach the test broker.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace imgpipe::test {

std::filesystem::path source_dir();  // IMGPIPE_SOURCE_DIR, or the tree this binary was built from
std::filesystem::path binary_dir();  // IMGPIPE_BINARY_DIR, or the build dir it was built in
std::filesystem::path models_dir();  // <source>/models
// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "imgpipe-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::vector<std::uint8_t> read_file(const std::filesystem::path& file);
void write_file(const std::filesystem::path& file, const std::vector<std::uint8_t>& bytes);
// The URL of the throwaway broker that scripts/test started (IMGPIPE_TEST_BROKER); fails the test if unset.
std::string broker_url();
// {IMGPIPE_BROKER: broker_url()}, for a child's environment (see Environment in process.hpp): the test
// broker's URL has a password, which the command line refuses.
std::map<std::string, std::string> broker_environment();
// Runs the broker control script (IMGPIPE_TEST_BROKER_CTL) with one verb: restart, stop, start, kill.
void broker_ctl(const std::string& verb);

}  // namespace imgpipe::test

namespace imgpipe::test {
// Real photographs shipped by Debian packages (opencv-doc, python3-skimage) that scripts/install-deps
// installs.
std::filesystem::path opencv_photo(const std::string& name);   // e.g. "fruits.jpg"
std::filesystem::path skimage_photo(const std::string& name);  // e.g. "astronaut.png", "truncated.jpg"
}  // namespace imgpipe::test

namespace imgpipe::test {
std::string read_text_file(const std::filesystem::path& file);
}

namespace imgpipe::test {
// GET http://127.0.0.1:port/path over a plain socket (HTTP/1.0, so the body is neither chunked nor kept
// open): scraping a worker's /metrics needs no HTTP library. Throws std::runtime_error unless the answer
// is 200; returns the body.
std::string http_get(int port, const std::string& path);
}  // namespace imgpipe::test

namespace imgpipe::test {
// The throwaway S3-compatible server scripts/test started (s3s-fs): IMGPIPE_TEST_S3_ENDPOINT,
// IMGPIPE_TEST_S3_ACCESS_KEY, IMGPIPE_TEST_S3_SECRET_KEY; each fails the test if unset.
std::string s3_endpoint();
std::string s3_access_key();
std::string s3_secret_key();
// The server's own process (IMGPIPE_TEST_S3_SERVER_PID), whose command line holds the keys: s3s-fs takes
// them no other way. Specs that look for secrets in process listings leave it out.
std::string s3_server_pid();
// {IMGPIPE_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY} for a child's environment.
std::map<std::string, std::string> s3_environment();
// A bucket name no other spec uses: "imgpipe-<what>-<random hex>".
std::string unique_bucket(const std::string& what);
}  // namespace imgpipe::test
