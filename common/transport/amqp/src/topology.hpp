// The pipeline's queues and exchanges, declared idempotently on every (re)connect.
#pragma once

#include "amqp_connection.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace imgpipe::topology {

// Exchanges imgpipe.dlx (direct) and imgpipe.dead.jobs (headers), and queue imgpipe.dead (quorum; a classic
// one declared by an earlier release is kept). Call before any consumer is on the channel.
void declare_dead_letters(amqp::Connection& connection);

// The stream of cancel records (queues::cancelled): durable, with a small bounded retention (its newest
// records, at most a day old), which workers and publishers read from its start.
void declare_cancellations(amqp::Connection& connection);

// Declares the stream and starts reading its cancel records from the first retained one; returns the
// consumer tag. A stream consumer needs a prefetch (basic.qos) in force when it is created: `prefetch` is
// set for it and left in force. When the broker refuses (RabbitMQ 3.10 can leave a stream unavailable after
// an unclean shutdown: "home node ... is down or inaccessible"), logs a warning, reopens the channel (which
// the refusal closed, with whatever consumers it had: call this before any other consume) and returns an
// empty tag: the caller then runs without cancellations until its next connect.
std::string follow_cancellations(amqp::Connection& connection, std::uint16_t prefetch, const LogFn& log);

// The dead letters and the queue of every stage of the graph.
void declare_pipeline(amqp::Connection& connection, const QueueSetup& setup);

// A quorum stage queue: durable, x-delivery-limit, dead-lettered to imgpipe.dlx under its own name, with
// imgpipe.dead bound to that name so the dead letters land there, and imgpipe.dead.jobs bound likewise so
// a copy reaches the job's result queue. Needs declare_dead_letters first.
void declare_stage_queue(amqp::Connection& connection, const std::string& name, const QueueSetup& setup);

// A job's result queue: a quorum queue (a classic one of a job submitted by an earlier release is kept),
// deleted by the broker after `ttl` without consumers. Call before any consumer is on the channel.
void declare_result_queue(amqp::Connection& connection, const std::string& name,
                          std::chrono::milliseconds ttl);

// Binds a job's result queue to imgpipe.dead.jobs on its x-imgpipe-job header: the job's dead letters,
// whether the broker dead-lettered them (delivery limit) or a worker did (undecodable), arrive there too.
// The binding goes away with the queue. Needs declare_dead_letters first.
void bind_job_dead_letters(amqp::Connection& connection, const std::string& result_queue,
                           const std::string& job_id);

}  // namespace imgpipe::topology
