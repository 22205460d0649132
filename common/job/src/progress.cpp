#include "imgpipe/job/progress.hpp"

#include <unistd.h>

#include <iomanip>
#include <iostream>
#include <sstream>

namespace imgpipe {
namespace {

std::string format_duration(double seconds) {
  std::ostringstream out;
  const auto total = static_cast<long>(seconds);
  if (total >= 3600) out << total / 3600 << "h";
  if (total >= 60) out << std::setw(total >= 3600 ? 2 : 1) << std::setfill('0') << (total / 60) % 60 << "m";
  out << std::setw(total >= 60 ? 2 : 1) << std::setfill('0') << total % 60 << "s";
  return out.str();
}

}  // namespace

Progress::Progress(std::string what, std::size_t total, bool enabled)
    : what_(std::move(what)),
      total_(total),
      enabled_(enabled),
      terminal_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::update(std::size_t done, std::size_t failed) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const auto since_last = now - last_;
  const bool due =
      since_last >= (terminal_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(5000));
  const bool just_completed = done == total_ && shown_ != total_;
  if (!due && !just_completed) return;
  last_ = now;
  shown_ = done;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
  std::ostringstream line;
  if (terminal_) {
    constexpr int kWidth = 30;
    const int filled = total_ ? static_cast<int>(kWidth * done / total_) : kWidth;
    line << '\r' << what_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
         << std::string(static_cast<std::size_t>(kWidth - filled), '.') << "] ";
  } else {
    line << what_ << ": ";
  }
  line << done << '/' << total_ << " images, " << failed << " failed, " << std::fixed << std::setprecision(1)
       << rate << " images/s, elapsed " << format_duration(elapsed) << ", ETA " << format_duration(eta);
  std::cerr << line.str() << (terminal_ ? "   " : "\n") << std::flush;
}

void Progress::finish(std::size_t done, std::size_t failed) {
  if (!enabled_) return;
  if (shown_ != done) {
    last_ = {};
    update(done, failed);
  }
  if (terminal_) std::cerr << '\n';
}

}  // namespace imgpipe
