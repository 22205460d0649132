// Files the job state and the metrics server rely on: a descriptor that always closes, and whole-file writes
// that a crash cannot leave half done.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>

namespace imgpipe {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor& operator=(FileDescriptor&&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// Write to a temporary file, fsync, rename over `file`: afterwards the file holds either its previous
// content or `text`. Throws std::runtime_error naming the file.
void write_file_atomically(const std::filesystem::path& file, const std::string& text);

}  // namespace imgpipe
