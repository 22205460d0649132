// A Linux eventfd: lets the compute thread wake the IO thread out of poll() the moment a result is ready.
#pragma once

namespace imgpipe {

class EventFd {
 public:
  EventFd();  // throws std::system_error
  ~EventFd();
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;

  void notify() noexcept;
  void drain() noexcept;
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace imgpipe
