// One measurement: publishers and consumers on their own queues of a real broker, moving one kind of message
// the way the pipeline moves it, for a fixed time after a warm-up.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "cpu_time.hpp"
#include "imgpipe/ops/broker_address.hpp"
#include "messages.hpp"

namespace imgpipe::bench {

enum class QueueKind {
  stage,   // a quorum queue declared like imgpipe.images: workers (QueueWorker) consume it
  result,  // a job's classic result queue: the publisher's JobChannel consumes it, one per job
};

struct LoadOptions {
  BrokerAddress address;
  QueueKind queue_kind = QueueKind::stage;
  int queues = 1;           // each with its own publisher and consumers, all at once
  int consumers = 1;        // per stage queue (a result queue has its job's one)
  int prefetch = 4;         // the workers' default --prefetch
  int confirm_window = 64;  // the workers' and JobChannel's default
  double warmup_seconds = 1.0;
  double seconds = 5.0;
  // Publishers wait while their queue holds this much, so the queue stays short (as in a pipeline that keeps
  // up) and the broker's memory bounded whatever the message size.
  std::size_t max_backlog_bytes = 64u << 20;
  pid_t broker_pid = 0;  // for its CPU figure; 0: none
};

struct LoadResult {
  double seconds = 0.0;             // the measured interval
  std::uint64_t consumed = 0;       // messages acked by consumers in it, all queues
  std::uint64_t published = 0;      // messages published in it, all queues
  std::uint64_t backlog_after = 0;  // published but not yet consumed at its end, all queues
  CpuUse cpu;
  std::optional<double> broker_rss_mb;  // at its end
};

// Declares the queues, runs, stops every client, and deletes the queues. Throws BrokerError.
LoadResult run_load(const LoadOptions& options, const Messages& messages);

}  // namespace imgpipe::bench
