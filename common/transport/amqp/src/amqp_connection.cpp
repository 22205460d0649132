// rabbitmq-c 0.11 behind RAII: every handle freed, every failure a BrokerError naming operation and reason.
#include "amqp_connection.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string_view>
#include <system_error>

namespace imgpipe::amqp {

namespace {

constexpr amqp_channel_t channel = 1;
constexpr const char* content_type = "application/x-imgpipe";
constexpr int frame_max = 131072;  // rabbitmq-c's default; large bodies are split into frames

struct ConnectionDeleter {
  void operator()(amqp_connection_state_t state) const noexcept { amqp_destroy_connection(state); }
};
using ConnectionHandle = std::unique_ptr<amqp_connection_state_t_, ConnectionDeleter>;

// Owns what amqp_consume_message allocated, once it succeeded.
struct Envelope {
  amqp_envelope_t value{};
  bool owned = false;
  Envelope() = default;
  Envelope(const Envelope&) = delete;
  Envelope& operator=(const Envelope&) = delete;
  ~Envelope() {
    if (owned) amqp_destroy_envelope(&value);
  }
};

// Owns what amqp_read_message allocated (basic.get and basic.return content).
struct Message {
  amqp_message_t value{};
  bool owned = false;
  Message() = default;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message() {
    if (owned) amqp_destroy_message(&value);
  }
};

timeval to_timeval(std::chrono::milliseconds duration) {
  const auto ms = std::max<std::chrono::milliseconds::rep>(duration.count(), 0);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

std::string to_string(amqp_bytes_t bytes) {
  if (bytes.len == 0) return {};
  return {static_cast<const char*>(bytes.bytes), bytes.len};
}

// rabbitmq-c takes non-const pointers but only reads what we pass in.
amqp_bytes_t bytes_of(const std::string& text) {
  return {text.size(), const_cast<char*>(text.data())};
}

bool is_connection_loss(int status) {
  switch (status) {
    case AMQP_STATUS_SOCKET_ERROR:
    case AMQP_STATUS_CONNECTION_CLOSED:
    case AMQP_STATUS_HEARTBEAT_TIMEOUT:
    case AMQP_STATUS_SOCKET_CLOSED:
    case AMQP_STATUS_TIMEOUT:
    case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED:
    case AMQP_STATUS_TCP_ERROR:
    case AMQP_STATUS_SSL_ERROR:
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
      return true;
    default:
      return false;
  }
}

Headers read_headers(const amqp_basic_properties_t& properties) {
  Headers headers;
  if ((properties._flags & AMQP_BASIC_HEADERS_FLAG) == 0) return headers;
  for (int i = 0; i < properties.headers.num_entries; ++i) {
    const amqp_table_entry_t& entry = properties.headers.entries[i];
    if (entry.value.kind == AMQP_FIELD_KIND_UTF8 || entry.value.kind == AMQP_FIELD_KIND_BYTES) {
      headers.emplace(to_string(entry.key), to_string(entry.value.value.bytes));
    }
  }
  return headers;
}

IncomingMessage to_incoming(std::uint64_t delivery_tag, bool redelivered, const amqp_message_t& message,
                            std::string consumer_tag = {}) {
  IncomingMessage incoming;
  incoming.consumer_tag = std::move(consumer_tag);
  incoming.delivery_tag = delivery_tag;
  incoming.redelivered = redelivered;
  const auto* data = static_cast<const std::uint8_t*>(message.body.bytes);
  if (message.body.len > 0) incoming.body.assign(data, data + message.body.len);
  incoming.headers = read_headers(message.properties);
  return incoming;
}

// Keeps the strings alive for as long as rabbitmq-c reads the table.
class Table {
 public:
  explicit Table(const Arguments& arguments) {
    entries_.reserve(arguments.size());
    for (const auto& [key, value] : arguments) {
      amqp_table_entry_t entry{};
      entry.key = bytes_of(key);
      if (const auto* text = std::get_if<std::string>(&value)) {
        entry.value.kind = AMQP_FIELD_KIND_UTF8;
        entry.value.value.bytes = bytes_of(*text);
      } else {
        entry.value.kind = AMQP_FIELD_KIND_I64;
        entry.value.value.i64 = std::get<std::int64_t>(value);
      }
      entries_.push_back(entry);
    }
  }
  explicit Table(const Headers& headers) {
    entries_.reserve(headers.size());
    for (const auto& [key, value] : headers) {
      amqp_table_entry_t entry{};
      entry.key = bytes_of(key);
      entry.value.kind = AMQP_FIELD_KIND_UTF8;
      entry.value.value.bytes = bytes_of(value);
      entries_.push_back(entry);
    }
  }
  amqp_table_t get() {
    return {static_cast<int>(entries_.size()), entries_.empty() ? nullptr : entries_.data()};
  }

 private:
  std::vector<amqp_table_entry_t> entries_;
};

// rabbitmq-c's TLS errors are terse ("SSL peer cert verification failed"): say what was checked against
// what, and what usually causes it. A certificate that does not verify is a setup error, not an outage, so
// it is BrokerRefused; a failed handshake stays BrokerUnreachable (a broker restarting mid-handshake).
[[noreturn]] void throw_tls_failure(const BrokerAddress& address, const std::string& peer, int status) {
  const std::string where = "TLS connection to " + peer + " failed: ";
  const std::string verification = where + "certificate verification failed: the broker's certificate ";
  switch (status) {
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
      throw BrokerRefused(verification + "is not signed by a CA in " + address.ca_file +
                          " (or has expired); point cacertfile= at the CA that signed it");
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
      throw BrokerRefused(verification + "does not name host '" + address.host +
                          "'; connect with a host name that its subjectAltName lists");
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
      throw BrokerUnreachable(where + "TLS handshake failed; is port " + std::to_string(address.port) +
                              " the broker's TLS listener (usually 5671) and not its plain AMQP port?");
    default:
      if (is_connection_loss(status)) throw BrokerUnreachable(where + amqp_error_string2(status));
      throw BrokerError(where + amqp_error_string2(status));
  }
}

}  // namespace

struct Connection::State {
  ConnectionHandle handle;
  std::string peer;  // redacted URL, for messages
  bool connection_open = false;
  bool channel_open = false;
  std::uint64_t next_sequence = 1;

  amqp_connection_state_t get() const { return handle.get(); }

  [[noreturn]] void fail_library(std::string_view operation, int status) {
    // rabbitmq-c closes the socket on these; a polite close would only block.
    connection_open = false;
    const std::string message =
        std::string(operation) + " on " + peer + " failed: " + amqp_error_string2(status);
    if (is_connection_loss(status)) throw BrokerUnreachable(message);
    throw BrokerError(message);
  }

  // The broker closed the channel or the connection: answer as the protocol asks, then report its reason.
  [[noreturn]] void fail_server(std::string_view operation, const amqp_method_t& method) {
    std::string reason;
    int code = 0;
    if (method.id == AMQP_CONNECTION_CLOSE_METHOD) {
      const auto* close = static_cast<const amqp_connection_close_t*>(method.decoded);
      code = close->reply_code;
      reason = "broker closed the connection: " + std::to_string(code) + " " + to_string(close->reply_text);
      amqp_connection_close_ok_t close_ok{};
      amqp_send_method(get(), 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &close_ok);
      connection_open = false;
      channel_open = false;
    } else if (method.id == AMQP_CHANNEL_CLOSE_METHOD) {
      const auto* close = static_cast<const amqp_channel_close_t*>(method.decoded);
      code = close->reply_code;
      reason = "broker closed the channel: " + std::to_string(code) + " " + to_string(close->reply_text);
      amqp_channel_close_ok_t close_ok{};
      amqp_send_method(get(), channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
      channel_open = false;
    } else {
      reason = "unexpected broker method " + std::string(amqp_method_name(method.id));
    }
    const std::string message = std::string(operation) + " on " + peer + ": " + reason;
    // 320 CONNECTION_FORCED: the broker is shutting down or restarting; coming back later works.
    if (code == AMQP_CONNECTION_FORCED || code == AMQP_INTERNAL_ERROR) throw BrokerUnreachable(message);
    throw BrokerRefused(message);
  }

  void check(std::string_view operation, int status) {
    if (status != AMQP_STATUS_OK) fail_library(operation, status);
  }

  void check(std::string_view operation, const amqp_rpc_reply_t& reply) {
    switch (reply.reply_type) {
      case AMQP_RESPONSE_NORMAL:
        return;
      case AMQP_RESPONSE_NONE:
        connection_open = false;
        throw BrokerError(std::string(operation) + " on " + peer + " failed: missing RPC reply");
      case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        fail_library(operation, reply.library_error);
      case AMQP_RESPONSE_SERVER_EXCEPTION:
        fail_server(operation, reply.reply);
    }
  }

  // For the generated RPC wrappers (amqp_queue_declare, ...), which return NULL on failure.
  template <typename Reply>
  Reply* rpc(std::string_view operation, Reply* reply) {
    if (reply == nullptr) {
      check(operation, amqp_get_rpc_reply(get()));
      throw BrokerError(std::string(operation) + " on " + peer + " failed without a reason");
    }
    return reply;
  }

  std::optional<Event> read_other_frame() {
    amqp_frame_t frame{};
    // amqp_consume_message put the frame back: this returns it without blocking.
    check("read frame", amqp_simple_wait_frame(get(), &frame));
    if (frame.frame_type != AMQP_FRAME_METHOD) return std::nullopt;
    const amqp_method_t& method = frame.payload.method;
    switch (method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* ack = static_cast<const amqp_basic_ack_t*>(method.decoded);
        return Confirm{ack->delivery_tag, ack->multiple != 0, true};
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* nack = static_cast<const amqp_basic_nack_t*>(method.decoded);
        return Confirm{nack->delivery_tag, nack->multiple != 0, false};
      }
      case AMQP_BASIC_RETURN_METHOD: {
        const auto* returned = static_cast<const amqp_basic_return_t*>(method.decoded);
        Returned event{to_string(returned->routing_key), returned->reply_code,
                       to_string(returned->reply_text)};
        // The returned content follows on the channel; read it so the next frame is a method again.
        Message content;
        check("read returned message", amqp_read_message(get(), frame.channel, &content.value, 0));
        content.owned = true;
        return event;
      }
      case AMQP_BASIC_CANCEL_METHOD: {
        const auto* cancel = static_cast<const amqp_basic_cancel_t*>(method.decoded);
        return Cancelled{to_string(cancel->consumer_tag)};
      }
      case AMQP_CONNECTION_BLOCKED_METHOD: {
        const auto* blocked = static_cast<const amqp_connection_blocked_t*>(method.decoded);
        return Blocked{to_string(blocked->reason)};
      }
      case AMQP_CONNECTION_UNBLOCKED_METHOD:
        return Unblocked{};
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD:
        fail_server("wait for deliveries", method);
      default:
        return std::nullopt;
    }
  }
};

Connection::Connection(const BrokerAddress& address, const ConnectionOptions& options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.peer = address.redacted();
  s.handle.reset(amqp_new_connection());
  if (!s.handle) throw BrokerError("connect to " + s.peer + " failed: cannot allocate a connection");

  amqp_socket_t* socket = nullptr;  // owned by the connection state
  if (address.tls) {
    // rabbitmq-c 0.11 initialises OpenSSL (amqp_set_initialize_ssl_library left at its default) and counts
    // TLS sockets under its own mutex, so a worker's IO thread and another thread may each open one; OpenSSL
    // 3 is thread-safe. A connection itself is only ever used by the one thread that owns it.
    socket = amqp_ssl_socket_new(s.get());
    if (socket == nullptr) throw BrokerError("connect to " + s.peer + " failed: cannot create a TLS socket");
    amqp_ssl_socket_set_verify_peer(socket, 1);
    amqp_ssl_socket_set_verify_hostname(socket, 1);
    if (amqp_ssl_socket_set_cacert(socket, address.ca_file.c_str()) != AMQP_STATUS_OK) {
      throw BrokerRefused("connect to " + s.peer + " failed: cannot load CA file " + address.ca_file +
                          " (cacertfile=): it is missing, unreadable or not PEM certificates");
    }
  } else {
    socket = amqp_tcp_socket_new(s.get());
    if (socket == nullptr) throw BrokerError("connect to " + s.peer + " failed: cannot create a socket");
  }

  const timeval connect_timeout = to_timeval(options.connect_timeout);
  // rabbitmq-c reports a refused connection only as "a socket error occurred" (errno is not reliable here).
  // There is no fallback: a failed TLS connection is an error, never a retry over plain AMQP.
  const int opened = amqp_socket_open_noblock(socket, address.host.c_str(), address.port, &connect_timeout);
  if (address.tls && opened != AMQP_STATUS_OK) throw_tls_failure(address, s.peer, opened);
  s.check("connect", opened);
  s.check("set handshake timeout", amqp_set_handshake_timeout(s.get(), &connect_timeout));
  const timeval rpc_timeout = to_timeval(options.rpc_timeout);
  s.check("set RPC timeout", amqp_set_rpc_timeout(s.get(), &rpc_timeout));

  // connection_name shows up in the broker's logs and `rabbitmqctl list_connections`, with the node we
  // asked for, so an operator sees which node of a cluster each client is on. The capability
  // connection.blocked (rabbitmq-c 0.11 does not advertise it; it merges ours into its own) makes the broker
  // tell us when an alarm stops it reading our publishes, instead of leaving us to guess from missing
  // confirms.
  amqp_table_entry_t capability{};
  capability.key = amqp_cstring_bytes("connection.blocked");
  capability.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  capability.value.value.boolean = 1;
  std::array<amqp_table_entry_t, 2> property_entries{};
  property_entries[0].key = amqp_cstring_bytes("connection_name");
  property_entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
  const std::string connection_name = options.client_name + "@" + address.node();
  property_entries[0].value.value.bytes = bytes_of(connection_name);
  property_entries[1].key = amqp_cstring_bytes("capabilities");
  property_entries[1].value.kind = AMQP_FIELD_KIND_TABLE;
  property_entries[1].value.value.table = {1, &capability};
  const amqp_table_t properties{static_cast<int>(property_entries.size()), property_entries.data()};
  s.check("log in as " + address.user,
          amqp_login_with_properties(s.get(), address.vhost.c_str(), 0, frame_max,
                                     static_cast<int>(options.heartbeat.count()), &properties,
                                     AMQP_SASL_METHOD_PLAIN, address.user.c_str(), address.password.c_str()));
  s.connection_open = true;
  s.rpc("open channel", amqp_channel_open(s.get(), channel));
  s.channel_open = true;
}

Connection::~Connection() {
  State& s = *state_;
  // Closing is best effort: the broker requeues unacked deliveries either way.
  if (s.connection_open && s.channel_open) amqp_channel_close(s.get(), channel, AMQP_REPLY_SUCCESS);
  if (s.connection_open) amqp_connection_close(s.get(), AMQP_REPLY_SUCCESS);
}

void Connection::reopen_channel() {
  State& s = *state_;
  if (s.channel_open) return;
  if (!s.connection_open)
    throw BrokerUnreachable("reopen a channel on " + s.peer + ": the connection is closed");
  s.rpc("open channel", amqp_channel_open(s.get(), channel));
  s.channel_open = true;
}

void Connection::enable_confirms() {
  state_->rpc("enable publisher confirms", amqp_confirm_select(state_->get(), channel));
  state_->next_sequence = 1;
}

void Connection::set_prefetch(std::uint16_t count) {
  state_->rpc("set prefetch " + std::to_string(count), amqp_basic_qos(state_->get(), channel, 0, count, 0));
}

void Connection::declare_exchange(const std::string& name, const std::string& type) {
  state_->rpc("declare exchange " + name,
              amqp_exchange_declare(state_->get(), channel, bytes_of(name), bytes_of(type), 0, 1, 0, 0,
                                    amqp_empty_table));
}

std::uint32_t Connection::declare_queue(const std::string& name, const Arguments& arguments) {
  Table table(arguments);
  const auto* ok =
      state_->rpc("declare queue " + name,
                  amqp_queue_declare(state_->get(), channel, bytes_of(name), 0, 1, 0, 0, table.get()));
  return ok->message_count;
}

std::uint32_t Connection::message_count(const std::string& name) {
  const auto* ok =
      state_->rpc("inspect queue " + name,
                  amqp_queue_declare(state_->get(), channel, bytes_of(name), 1, 0, 0, 0, amqp_empty_table));
  return ok->message_count;
}

std::uint32_t Connection::consumer_count(const std::string& name) {
  const auto* ok =
      state_->rpc("inspect queue " + name,
                  amqp_queue_declare(state_->get(), channel, bytes_of(name), 1, 0, 0, 0, amqp_empty_table));
  return ok->consumer_count;
}

void Connection::bind_queue(const std::string& queue, const std::string& exchange,
                            const std::string& routing_key, const Arguments& arguments) {
  Table table(arguments);
  state_->rpc("bind queue " + queue + " to " + exchange + " with key " + routing_key,
              amqp_queue_bind(state_->get(), channel, bytes_of(queue), bytes_of(exchange),
                              bytes_of(routing_key), table.get()));
}

void Connection::bind_exchange(const std::string& destination, const std::string& source,
                               const std::string& routing_key) {
  state_->rpc("bind exchange " + destination + " to " + source + " with key " + routing_key,
              amqp_exchange_bind(state_->get(), channel, bytes_of(destination), bytes_of(source),
                                 bytes_of(routing_key), amqp_empty_table));
}

void Connection::purge_queue(const std::string& name) {
  state_->rpc("purge queue " + name, amqp_queue_purge(state_->get(), channel, bytes_of(name)));
}

void Connection::delete_queue(const std::string& name) {
  state_->rpc("delete queue " + name, amqp_queue_delete(state_->get(), channel, bytes_of(name), 0, 0));
}

std::string Connection::consume(const std::string& queue, const Arguments& arguments) {
  Table table(arguments);
  const auto* ok = state_->rpc(
      "consume " + queue,
      amqp_basic_consume(state_->get(), channel, bytes_of(queue), amqp_empty_bytes, 0, 0, 0, table.get()));
  return to_string(ok->consumer_tag);
}

void Connection::cancel(const std::string& consumer_tag) {
  state_->rpc("cancel consumer " + consumer_tag,
              amqp_basic_cancel(state_->get(), channel, bytes_of(consumer_tag)));
}

std::optional<IncomingMessage> Connection::get(const std::string& queue) {
  const std::string operation = "get from " + queue;
  const amqp_rpc_reply_t reply = amqp_basic_get(state_->get(), channel, bytes_of(queue), 1);
  state_->check(operation, reply);
  if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::nullopt;
  const auto* ok = static_cast<const amqp_basic_get_ok_t*>(reply.reply.decoded);
  const std::uint64_t tag = ok->delivery_tag;
  const bool redelivered = ok->redelivered != 0;
  Message message;
  state_->check(operation, amqp_read_message(state_->get(), channel, &message.value, 0));
  message.owned = true;
  IncomingMessage incoming = to_incoming(tag, redelivered, message.value);
  amqp_maybe_release_buffers(state_->get());
  return incoming;
}

std::uint64_t Connection::publish(const OutgoingMessage& message) {
  Table headers(message.headers);
  amqp_basic_properties_t properties{};
  properties._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
  properties.content_type = amqp_cstring_bytes(content_type);
  properties.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  properties.headers = headers.get();
  const amqp_bytes_t body{message.body.size(),
                          const_cast<std::uint8_t*>(message.body.empty() ? nullptr : message.body.data())};
  // Not mandatory: the stage queues always exist, and a result for a job whose queue expired has nobody
  // left to read it.
  state_->check("publish to " + message.routing_key,
                amqp_basic_publish(state_->get(), channel,
                                   message.exchange.empty() ? amqp_empty_bytes : bytes_of(message.exchange),
                                   bytes_of(message.routing_key), 0, 0, &properties, body));
  return state_->next_sequence++;
}

void Connection::ack(std::uint64_t delivery_tag) {
  state_->check("ack delivery " + std::to_string(delivery_tag),
                amqp_basic_ack(state_->get(), channel, delivery_tag, 0));
}

void Connection::reject(std::uint64_t delivery_tag, bool requeue) {
  state_->check("reject delivery " + std::to_string(delivery_tag),
                amqp_basic_reject(state_->get(), channel, delivery_tag, requeue ? 1 : 0));
}

std::optional<Event> Connection::next_event(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // Frees the previous frames' memory once nothing queued points into it.
    amqp_maybe_release_buffers(state_->get());
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    const timeval wait = to_timeval(remaining);
    Envelope envelope;
    const amqp_rpc_reply_t reply = amqp_consume_message(state_->get(), &envelope.value, &wait, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      envelope.owned = true;
      return to_incoming(envelope.value.delivery_tag, envelope.value.redelivered != 0, envelope.value.message,
                         to_string(envelope.value.consumer_tag));
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
      if (reply.library_error == AMQP_STATUS_TIMEOUT) return std::nullopt;
      if (reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        if (auto event = state_->read_other_frame()) return event;
        continue;
      }
    }
    state_->check("wait for deliveries", reply);
  }
}

int Connection::socket_fd() const {
  return amqp_get_sockfd(state_->get());
}

}  // namespace imgpipe::amqp
