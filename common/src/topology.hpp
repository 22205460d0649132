// The pipeline's queues and exchanges, declared idempotently on every (re)connect.
#pragma once

#include "amqp_connection.hpp"

#include <chrono>
#include <string>

namespace imgpipe::topology {

// Exchange imgpipe.dlx and queue imgpipe.dead.
void declare_dead_letters(amqp::Connection& connection);

// The dead letters and the three stage queues.
void declare_pipeline(amqp::Connection& connection, const ConnectionOptions& options);

bool is_pipeline_queue(const std::string& name);

// A quorum stage queue: durable, x-delivery-limit, dead-lettered to imgpipe.dlx under its own name, with
// imgpipe.dead bound to that name so the dead letters land there. Needs declare_dead_letters first.
void declare_stage_queue(amqp::Connection& connection, const std::string& name,
                         const ConnectionOptions& options);

// A job's result queue: durable classic, deleted by the broker after `ttl` without consumers.
void declare_result_queue(amqp::Connection& connection, const std::string& name,
                          std::chrono::milliseconds ttl);

}  // namespace imgpipe::topology
