// What every RabbitMQ client of imgpipe shares: its errors, its connection settings and the messages it
// moves. The transport runs over rabbitmq-c 0.11 behind pimpl; nothing here includes <amqp.h>.
//
// Topology (declared idempotently by every worker and the publisher; queue names in messages/protocol.hpp
// and the stage graph, pipeline/stage_graph.hpp):
//   one quorum stage queue per stage (imgpipe.images, imgpipe.pixels, imgpipe.features), durable,
//     x-delivery-limit, dead-lettering to exchange imgpipe.dlx -> queue imgpipe.dead
//   exchange imgpipe.dead.jobs (headers), bound to imgpipe.dlx: a copy of each dead letter goes to the
//     result queue of the job named by its x-imgpipe-job header, so the publisher can answer its images
//   queue imgpipe.results.<job> per job: durable, x-expires, so results outlive a publisher crash for a while
//   stream imgpipe.cancelled: `imgpipe cancel` records; workers and publishers read it from its start on
//     every connect (bounded retention), so a cancel reaches every replica, including later ones
// All messages are persistent and published with confirms, on the default exchange except dead letters.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "imgpipe/messages/protocol.hpp"
#include "imgpipe/ops/broker_address.hpp"
#include "imgpipe/ops/logging.hpp"

namespace imgpipe {

// The broker is unreachable, refused us, or dropped the connection. Workers retry these with backoff.
// Every message names the operation and the reason (library error or the broker's reply code and text).
class BrokerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// No connection could be made, or it was lost: socket error, heartbeat timeout, broker shutting down.
// Retrying later can succeed.
class BrokerUnreachable : public BrokerError {
 public:
  using BrokerError::BrokerError;
};

// The broker understood the request and refused it: bad credentials (403), a queue declared with other
// arguments (406), a missing queue (404). Retrying does not help until someone changes the setup.
class BrokerRefused : public BrokerError {
 public:
  using BrokerError::BrokerError;
};

// How to hold one connection.
struct ConnectionOptions {
  std::chrono::seconds heartbeat{10};
  std::chrono::seconds connect_timeout{10};  // TCP connect and login handshake
  // Bound on each synchronous request (declare, qos, consume). Generous: quorum queue declares wait for a
  // leader election right after a broker restart.
  std::chrono::seconds rpc_timeout{30};
  // Shown by the broker (rabbitmqctl list_connections, management UI) as the connection_name
  // "CLIENT_NAME@host:port", naming the node the client connected to.
  std::string client_name = "imgpipe";
  // Which node of a broker list to try first (an index, taken modulo the list's size); unset: a random one,
  // so replicas started alike spread over a cluster's nodes.
  std::optional<std::size_t> first_node;
};

// How imgpipe's queues are declared. Every client that declares them must agree: RabbitMQ refuses a queue
// re-declared with other arguments (406 PRECONDITION_FAILED).
struct QueueSetup {
  int delivery_limit = 5;                                              // x-delivery-limit on the stage queues
  // x-quorum-initial-group-size of the stage queues: how many nodes hold a replica. 0 leaves it out, and
  // RabbitMQ 3.10 takes its quorum_cluster_size setting (3 by default); a size above the number of
  // cluster nodes gives every node one, so 3 works on a single node too. The broker compares it on every
  // re-declare like the other arguments: every client must give the same value (or all none).
  int quorum_group_size = 0;
  std::chrono::milliseconds result_queue_ttl{std::chrono::hours(24)};  // x-expires of a job's result queue
};

// How long a publisher keeps trying before it tells its user the broker is gone.
struct PublisherPatience {
  // JobChannel gives up with BrokerUnreachable when the broker stays unreachable this long...
  std::chrono::seconds give_up_after{120};
  // ...but sooner when the broker was never reached at all: a mistyped URL or a broker that is not running
  // should not cost the user two minutes.
  std::chrono::seconds give_up_first_connect_after{15};
};

// What a client that declares queues needs: a worker, a session.
struct BrokerOptions : ConnectionOptions, QueueSetup {};

// What the publisher's JobChannel needs.
struct PublisherOptions : BrokerOptions, PublisherPatience {};

struct OutgoingMessage {
  std::string routing_key;  // queue name (default exchange), or the routing key on `exchange`
  std::vector<std::uint8_t> body;
  Headers headers;            // string-valued AMQP headers, e.g. x-imgpipe-job, x-imgpipe-error
  std::string exchange = {};  // empty: the default exchange
};

struct IncomingMessage {
  std::uint64_t delivery_tag = 0;  // opaque: pass it back to the object that delivered the message
  bool redelivered = false;
  std::vector<std::uint8_t> body;
  Headers headers;           // string-valued headers only; others are ignored
  std::string consumer_tag;  // the consumer of the connection it was delivered to (empty for basic.get)
};

}  // namespace imgpipe
