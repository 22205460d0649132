// Which stage limits the pipeline, from its queues' figures (the management API's): the rule behind
// `imgpipe status`'s "feature-bound: add feature replicas". Pure, so crafted figures can test it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace imgpipe {

// One stage's input queue at one moment. Rates are messages (batches) per second.
struct StageFlow {
  std::string stage;   // the stage graph's name: preprocess, feature, classify
  bool exists = true;  // the queue is declared
  std::uint64_t ready = 0;
  std::uint64_t unacked = 0;
  std::uint64_t consumers = 0;
  double in_rate = 0;   // published into the queue
  double out_rate = 0;  // acked by the stage's workers: what it processes
};

struct Bottleneck {
  enum class Kind {
    idle,        // nothing queued, in flight or moving
    publisher,   // work flows and no stage has a backlog: the publisher (reading, sending) is the limit
    stage,       // `stage` has a backlog and every stage after it is starved: add replicas of it
    no_workers,  // `stage` has messages and no consumer: nothing moves until its workers start
  };
  Kind kind = Kind::idle;
  std::string stage;  // for stage and no_workers
  std::string text;   // in words, with the advice: "feature-bound: add feature replicas (...)"
};

// A stage is backlogged when messages wait beyond what its workers take next (ready >= 2, > consumers) and
// they are at least `min_backlog_seconds` of its work at its current processing rate (or it processes
// nothing yet). Messages reach a stage only as fast as the stages before it send them, so the last
// backlogged stage in pipeline order is the one that limits the output: every stage after it is starved.
// A stage with messages and no consumer comes first (nothing moves past it). Without any backlog while work
// moves, the stages keep up with the publisher. `stages` in pipeline order. Half a second by default: each
// publisher keeps only a window of its job in the broker, about a quarter to half a second of queueing beyond
// the pipeline's own time (in_flight_window.hpp), so a longer threshold would rarely see a backlog.
Bottleneck find_bottleneck(const std::vector<StageFlow>& stages, double min_backlog_seconds = 0.5);

const char* to_string(Bottleneck::Kind kind);

}  // namespace imgpipe
