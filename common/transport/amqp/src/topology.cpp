#include "topology.hpp"

#include "imgpipe/pipeline/stage_graph.hpp"

namespace imgpipe::topology {

void declare_stage_queue(amqp::Connection& connection, const std::string& name, const QueueSetup& setup) {
  // Quorum queues count redeliveries; without x-delivery-limit (3.10 has no default) a poison message
  // would cycle forever.
  amqp::Arguments arguments{{"x-queue-type", std::string("quorum")},
                            {"x-delivery-limit", std::int64_t{setup.delivery_limit}},
                            {"x-dead-letter-exchange", std::string(queues::dead_letter_exchange)},
                            {"x-dead-letter-routing-key", name}};
  // Only when asked: a queue declared without it refuses a re-declare with it (406), and the reverse.
  if (setup.quorum_group_size > 0) {
    arguments.emplace_back("x-quorum-initial-group-size", std::int64_t{setup.quorum_group_size});
  }
  connection.declare_queue(name, arguments);
  connection.bind_queue(queues::dead, queues::dead_letter_exchange, name);
  connection.bind_exchange(queues::dead_letters_by_job, queues::dead_letter_exchange, name);
}

void declare_dead_letters(amqp::Connection& connection) {
  // imgpipe.dlx stays a direct exchange: brokers of earlier releases have it, and re-declaring an
  // exchange with another type is refused (406). The per-job copies go through a second exchange instead.
  connection.declare_exchange(queues::dead_letter_exchange, "direct");
  connection.declare_exchange(queues::dead_letters_by_job, "headers");
  connection.declare_queue(queues::dead, {});
}

void declare_cancellations(amqp::Connection& connection) {
  // Retention is applied a whole segment at a time, so segments are small; 1 MiB holds about ten thousand
  // records, fewer than a reader's CancelledJobs remembers. A day is longer than any batch of a cancelled
  // job should wait in a stage queue; a batch older than that is answered into a result queue that is gone.
  connection.declare_queue(queues::cancelled, {{"x-queue-type", std::string("stream")},
                                               {"x-max-length-bytes", std::int64_t{1} << 20},
                                               {"x-stream-max-segment-size-bytes", std::int64_t{128} << 10},
                                               {"x-max-age", std::string("1D")}});
}

std::string follow_cancellations(amqp::Connection& connection, std::uint16_t prefetch, const LogFn& log) {
  try {
    declare_cancellations(connection);
    connection.set_prefetch(prefetch);
    return connection.consume(queues::cancelled, {{"x-stream-offset", std::string("first")}});
  } catch (const BrokerRefused& error) {
    // The pipeline must not stop because cancelling is unavailable: carry on without it, and say so.
    if (log) {
      log("warn", std::string(error.what()) + "; running WITHOUT following cancellations (imgpipe cancel " +
                      "will not reach this process) until it reconnects");
    }
    connection.reopen_channel();
    return {};
  }
}

void declare_pipeline(amqp::Connection& connection, const QueueSetup& setup) {
  declare_dead_letters(connection);
  for (const auto& stage : stage_graph()) declare_stage_queue(connection, stage.queue, setup);
}

void declare_result_queue(amqp::Connection& connection, const std::string& name,
                          std::chrono::milliseconds ttl) {
  connection.declare_queue(name, {{"x-expires", std::int64_t{ttl.count()}}});
}

void bind_job_dead_letters(amqp::Connection& connection, const std::string& result_queue,
                           const std::string& job_id) {
  // "all-with-x": plain "all" skips headers that start with x-, and would then match every dead letter.
  connection.bind_queue(result_queue, queues::dead_letters_by_job, "",
                        {{"x-match", std::string("all-with-x")}, {"x-imgpipe-job", job_id}});
}

}  // namespace imgpipe::topology
