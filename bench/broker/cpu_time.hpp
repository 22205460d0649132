// CPU seconds from /proc, to say what the broker (and everything else on a shared machine) burned while the
// benchmark measured: the transferable figure is the broker's CPU per message, not the rate on this machine.
#pragma once

#include <sys/types.h>
#include <optional>

namespace imgpipe::bench {

struct CpuSample {
  double wall = 0.0;             // steady clock, seconds
  std::optional<double> broker;  // user+system seconds of the broker's process, when a pid was given
  double self = 0.0;             // user+system seconds of this process (publishers and consumers)
  double machine_busy = 0.0;     // all cores' non-idle seconds since boot (/proc/stat)
};

// `broker_pid` 0: no broker figure. A pid that no longer exists gives none either.
CpuSample sample_cpu(pid_t broker_pid);

// Cores used in the interval: seconds of CPU per second of wall time.
struct CpuUse {
  std::optional<double> broker;
  double self = 0.0;
  double machine = 0.0;
};
CpuUse cpu_between(const CpuSample& start, const CpuSample& end);

// The process's resident memory (VmRSS) in MB, or nullopt: what a broker holding a backlog costs.
std::optional<double> resident_megabytes(pid_t pid);

}  // namespace imgpipe::bench
