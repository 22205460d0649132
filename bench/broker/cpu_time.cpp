#include "cpu_time.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

namespace imgpipe::bench {

namespace {

double clock_ticks() {
  static const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return ticks;
}

std::optional<double> process_seconds(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(file, line)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  double utime = 0.0;
  double stime = 0.0;
  for (int index = 3; index <= 15 && fields >> field; ++index) {
    if (index == 14) utime = std::stod(field);
    if (index == 15) stime = std::stod(field);
  }
  return (utime + stime) / clock_ticks();
}

double self_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double machine_busy_seconds() {
  std::ifstream file("/proc/stat");
  std::string cpu;
  file >> cpu;  // "cpu": the sum over all cores
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  file >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / clock_ticks();
}

}  // namespace

CpuSample sample_cpu(pid_t broker_pid) {
  CpuSample sample;
  sample.wall = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (broker_pid > 0) sample.broker = process_seconds(broker_pid);
  sample.self = self_seconds();
  sample.machine_busy = machine_busy_seconds();
  return sample;
}

CpuUse cpu_between(const CpuSample& start, const CpuSample& end) {
  const double wall = end.wall - start.wall;
  CpuUse use;
  if (wall <= 0.0) return use;
  if (start.broker && end.broker) use.broker = (*end.broker - *start.broker) / wall;
  use.self = (end.self - start.self) / wall;
  use.machine = (end.machine_busy - start.machine_busy) / wall;
  return use;
}

std::optional<double> resident_megabytes(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (file >> key) {
    if (key == "VmRSS:") {
      double kilobytes = 0.0;
      file >> kilobytes;
      return kilobytes * 1024.0 / 1e6;
    }
    file.ignore(4096, '\n');
  }
  return std::nullopt;
}

}  // namespace imgpipe::bench
