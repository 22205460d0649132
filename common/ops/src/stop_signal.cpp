#include "imgpipe/ops/stop_signal.hpp"

#include <pthread.h>
#include <signal.h>

namespace imgpipe {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

StopSignal::StopSignal() {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  waiter_ = std::thread([this, set] {
    int received = 0;
    sigwait(&set, &received);
    stop_ = true;
  });
}

StopSignal::~StopSignal() {
  // Wake the waiter if no signal came, so the thread can be joined.
  if (!stop_) pthread_kill(waiter_.native_handle(), SIGTERM);
  waiter_.join();
}

}  // namespace imgpipe
