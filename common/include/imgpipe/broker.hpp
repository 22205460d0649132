// RabbitMQ transport over rabbitmq-c 0.11. The C library stays behind pimpl; nothing here includes <amqp.h>.
//
// Topology (declared idempotently by every worker and the publisher):
//   queue imgpipe.images    (ImageBatch)   consumed by preprocess, or by a fused preprocess+feature worker
//   queue imgpipe.pixels    (PixelBatch)   consumed by feature
//   queue imgpipe.features  (FeatureBatch) consumed by classify
//   quorum queues, durable, x-delivery-limit, dead-lettering to exchange imgpipe.dlx -> queue imgpipe.dead
//   exchange imgpipe.dead.jobs (headers), bound to imgpipe.dlx: a copy of each dead letter goes to the
//     result queue of the job named by its x-imgpipe-job header, so the publisher can answer its images
//   queue imgpipe.results.<job> per job: durable, x-expires, so results outlive a publisher crash for a while
// All messages are persistent and published with confirms, on the default exchange except dead letters.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace imgpipe {

namespace queues {
inline constexpr const char* images = "imgpipe.images";
inline constexpr const char* pixels = "imgpipe.pixels";
inline constexpr const char* features = "imgpipe.features";
inline constexpr const char* dead = "imgpipe.dead";
inline constexpr const char* dead_letter_exchange = "imgpipe.dlx";
// Headers exchange: each result queue binds here on its job id (x-match all-with-x, RabbitMQ 3.10+).
inline constexpr const char* dead_letters_by_job = "imgpipe.dead.jobs";
std::string results_for(std::string_view job_id);
}  // namespace queues

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

// amqp[s]://user:pass@host:port/vhost[?cacertfile=PATH]; missing parts take the AMQP defaults
// (guest:guest@localhost:5672, vhost "/"; 5671 for amqps). A user without a password gets an empty one.
// User, password, host and vhost are percent-decoded ("%2f" is "/"). The only query parameter is cacertfile,
// for amqps; anything else (verify=verify_none, say) is rejected rather than silently ignored.
struct BrokerAddress {
  std::string host = "localhost";
  int port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  bool tls = false;
  std::string ca_file;  // amqps only, default the system bundle; peer and hostname verification are always on

  static BrokerAddress parse(const std::string& url);  // throws std::invalid_argument with the reason
  std::string redacted() const;                        // the URL with the password hidden, for logs
};

struct ConnectionOptions {
  std::chrono::seconds heartbeat{10};
  std::chrono::seconds connect_timeout{10};  // TCP connect and login handshake
  // Bound on each synchronous request (declare, qos, consume). Generous: quorum queue declares wait for a
  // leader election right after a broker restart.
  std::chrono::seconds rpc_timeout{30};
  // JobChannel gives up with BrokerUnreachable when the broker stays unreachable this long.
  std::chrono::seconds give_up_after{120};
  // ...but sooner when the broker was never reached at all: a mistyped URL or a broker that is not running
  // should not cost the user two minutes.
  std::chrono::seconds give_up_first_connect_after{15};
  int delivery_limit = 5;  // x-delivery-limit on the stage queues
  std::chrono::milliseconds result_queue_ttl{std::chrono::hours(24)};
  std::string client_name = "imgpipe";
};

using Headers = std::map<std::string, std::string>;

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
  Headers headers;  // string-valued headers only; others are ignored
};

// Logger used by the transport for connection events (connect, drop, retry). Must be thread-safe.
using LogFn = std::function<void(std::string_view level, std::string_view line)>;

// Fault injection for the fault-tolerance tests (tests/fault). Both are off (zero) by default and are never
// set by a deployment: they make a worker fail on purpose, at a moment no signal from outside can hit.
struct FaultInjection {
  // Kill the process (SIGKILL) once the outputs of its Nth delivery that had outputs are all confirmed by the
  // broker and before that delivery is acked: the broker redelivers an input whose outputs already exist,
  // which is the case that makes duplicates downstream. 0 = never.
  std::uint64_t crash_before_ack = 0;
  // Sleep this long in the compute thread before each handler call: a batch slower than the heartbeat
  // interval, without needing a big model. 0 = never.
  std::chrono::milliseconds handler_delay{0};
};

struct WorkerOptions {
  // The stage queue to consume. For imgpipe.images/pixels/features the worker declares the whole pipeline
  // topology; any other name is declared alone as a stage queue (quorum, delivery limit, dead-lettering).
  std::string queue;
  int prefetch = 4;         // unacked deliveries held at once
  int confirm_window = 64;  // unconfirmed publishes before we stop taking new work
  std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
  ConnectionOptions connection;
  // Called on the IO thread with the number of deliveries held (received, not yet acked or rejected)
  // whenever it changes; 0 after a connection is lost, since the broker takes them back. For metrics.
  std::function<void(std::size_t held)> on_held_changed;
  FaultInjection fault;
};

// What the handler wants done with one delivery: publish these, then ack the delivery once every one of
// them is confirmed by the broker. The handler dead-letters a message by returning it addressed to
// exchange queues::dead_letter_exchange under its source queue's name, with an x-imgpipe-error header:
// it lands in imgpipe.dead (and its job's result queue) as durably as any output.
// A handler that throws is a bug in the stage: the delivery is rejected with requeue, so the broker's
// delivery limit eventually dead-letters a poison message.
using DeliveryHandler = std::function<std::vector<OutgoingMessage>(const IncomingMessage&)>;

// Consumes one queue until `stop` becomes true. One IO thread owns the connection and keeps it serviced
// (heartbeats, confirms) while handlers run on a compute thread, so a batch longer than the heartbeat
// interval never drops the connection. Reconnects with exponential backoff after any connection failure,
// re-declares the topology and QoS, and lets unacked deliveries be redelivered by the broker.
// On stop, the batch in flight is finished, published, confirmed and acked before run() returns.
class QueueWorker {
 public:
  QueueWorker(BrokerAddress address, WorkerOptions options, DeliveryHandler handler, LogFn log);
  ~QueueWorker();
  QueueWorker(const QueueWorker&) = delete;
  QueueWorker& operator=(const QueueWorker&) = delete;

  void run(const std::atomic<bool>& stop);

  struct Stats {
    std::uint64_t handled = 0;
    std::uint64_t published = 0;
    std::uint64_t reconnects = 0;
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The publisher's side of a job: publish batches with a bounded confirm window, and consume the job's
// result queue. Survives a broker restart: reconnects, re-declares, republishes what was unconfirmed
// (consumers de-duplicate), and gives up with BrokerUnreachable after options.give_up_after.
// Not thread-safe: one thread owns a JobChannel. The connection is serviced only inside its calls, so an
// idle gap longer than twice the heartbeat costs a transparent reconnect on the next call.
class JobChannel {
 public:
  JobChannel(BrokerAddress address, ConnectionOptions options, std::string job_id, LogFn log);
  ~JobChannel();
  JobChannel(const JobChannel&) = delete;
  JobChannel& operator=(const JobChannel&) = delete;

  const std::string& result_queue() const;
  // Blocks while `confirm_window` publishes are unconfirmed.
  void publish(OutgoingMessage message, int confirm_window = 64);
  // Under a broker memory or disk alarm (connection.blocked) the broker is reachable but reads no publishes:
  // missing confirms then mean "wait", not "give up". publish() always waits alarms out; wait_confirms()
  // does when asked, its timeout then counting only time the broker was not blocking us.
  enum class AlarmWait { time_out, wait_out };
  // Throws BrokerError on timeout or nack.
  void wait_confirms(std::chrono::milliseconds timeout, AlarmWait alarms = AlarmWait::time_out);
  bool blocked() const;  // the broker reported an alarm and has not lifted it yet
  // Next result delivery, or nullopt after `timeout` (zero: only what has already arrived). Results are
  // acked with ack().
  std::optional<IncomingMessage> next_result(std::chrono::milliseconds timeout);
  // A tag from before a reconnect is ignored: the broker redelivers that result anyway.
  void ack(std::uint64_t delivery_tag);
  void delete_result_queue();
  std::uint64_t reconnects() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Opens a connection and declares the pipeline topology; used by tests and `imgpipe status`-like tools.
void declare_topology(const BrokerAddress& address, const ConnectionOptions& options);

// A short-lived administrative connection for tools and tests: declare, inspect, drain. No reconnects, and
// heartbeats are serviced only inside its calls: idle longer than two heartbeats and the broker drops it.
class BrokerSession {
 public:
  BrokerSession(const BrokerAddress& address, const ConnectionOptions& options);
  ~BrokerSession();
  BrokerSession(const BrokerSession&) = delete;
  BrokerSession& operator=(const BrokerSession&) = delete;

  void declare_topology();
  // A stage queue like imgpipe.images (quorum, options.delivery_limit, dead-lettered to imgpipe.dead under
  // its own name) with any name: lets tests run stages on private queues.
  void declare_stage_queue(const std::string& name);
  // Ready messages, not counting those delivered and unacked. Throws BrokerRefused if the queue is missing.
  std::uint32_t message_count(const std::string& queue);
  // Takes one message off the queue (basic.get, acked at once), or nullopt when the queue is empty.
  std::optional<IncomingMessage> get(const std::string& queue);
  void purge(const std::string& queue);
  void delete_queue(const std::string& queue);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imgpipe
