#include "event_fd.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace imgpipe {

EventFd::EventFd() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

EventFd::~EventFd() {
  ::close(fd_);
}

void EventFd::notify() noexcept {
  const std::uint64_t one = 1;
  // Only fails when the counter would overflow, and then a wakeup is pending anyway.
  [[maybe_unused]] const auto written = ::write(fd_, &one, sizeof one);
}

void EventFd::drain() noexcept {
  std::uint64_t count = 0;
  [[maybe_unused]] const auto read = ::read(fd_, &count, sizeof count);
}

}  // namespace imgpipe
