#include "imgpipe/ops/metrics.hpp"

#include "imgpipe/ops/files.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

namespace imgpipe {

namespace {

constexpr std::array kFailures = {ImageFailure::empty_file,         ImageFailure::not_an_image,
                                  ImageFailure::unsupported_format, ImageFailure::truncated,
                                  ImageFailure::too_large,          ImageFailure::model_error,
                                  ImageFailure::object_storage,     ImageFailure::other};

MetricsUnavailable system_failure(const std::string& what) {
  return MetricsUnavailable(what + ": " + std::strerror(errno));
}

// A minimal HTTP/1.x server for GET /metrics, one scrape at a time on its own thread.
// Why not prometheus-cpp's own Exposer (prometheus-cpp::pull): civetweb starts its threads with 100 KiB
// stacks, and in a process that loads LibTorch, OpenBLAS and glog their static TLS alone is larger than that,
// so pthread_create fails with EINVAL and the Exposer cannot start ("null context when constructing
// CivetServer"). A scrape is one short request, so a sequential server with timeouts is enough.
class MetricsServer {
 public:
  MetricsServer(const std::string& address, int port, std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)), socket_(open_listener(address, port)) {
    thread_ = std::jthread([this](std::stop_token stop) { serve(stop); });
  }

 private:
  static FileDescriptor open_listener(const std::string& address, int port) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    const auto port_bytes = htons(static_cast<std::uint16_t>(port));
    if (address.find(':') != std::string::npos) {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
      v6->sin6_family = AF_INET6;
      v6->sin6_port = port_bytes;
      if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) != 1)
        throw std::invalid_argument("not an IP address: " + address);
      length = sizeof(sockaddr_in6);
    } else {
      auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
      v4->sin_family = AF_INET;
      v4->sin_port = port_bytes;
      if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) != 1)
        throw std::invalid_argument("not an IP address: " + address);
      length = sizeof(sockaddr_in);
    }
    FileDescriptor socket(::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int fd = socket.get();
    if (fd < 0) throw system_failure("socket");
    const int on = 1;
    // A restarted worker must be able to listen again while the old connections sit in TIME_WAIT.
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0) throw system_failure("bind");
    if (::listen(fd, 16) != 0) throw system_failure("listen");
    return socket;
  }

  void serve(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      // Polling with a timeout lets the destructor stop the thread without a wake-up channel.
      pollfd listener{socket_.get(), POLLIN, 0};
      if (::poll(&listener, 1, 200) <= 0) continue;
      const FileDescriptor client(::accept4(socket_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (client.get() < 0) continue;
      answer(client.get());
    }
  }

  void answer(int client) const {
    // A client that never finishes its request must not hold the only serving thread for long.
    const timeval timeout{2, 0};
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    std::string request;
    char buffer[1024];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
      const auto n = ::recv(client, buffer, sizeof buffer, 0);
      if (n <= 0) return;
      request.append(buffer, static_cast<std::size_t>(n));
    }
    const bool is_metrics = request.starts_with("GET /metrics ") || request.starts_with("GET /metrics?");
    const std::string body =
        is_metrics ? prometheus::TextSerializer().Serialize(registry_->Collect()) : "only /metrics is here\n";
    const std::string response = std::string(is_metrics ? "HTTP/1.1 200 OK" : "HTTP/1.1 404 Not Found") +
                                 "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                                 "Content-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    for (std::size_t sent = 0; sent < response.size();) {
      const auto n = ::send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  std::shared_ptr<prometheus::Registry> registry_;
  FileDescriptor socket_;
  std::jthread thread_;  // last: stopped and joined before the socket closes
};

}  // namespace

const char* to_string(ImageFailure failure) {
  switch (failure) {
    case ImageFailure::empty_file:
      return "empty_file";
    case ImageFailure::not_an_image:
      return "not_an_image";
    case ImageFailure::unsupported_format:
      return "unsupported_format";
    case ImageFailure::truncated:
      return "truncated";
    case ImageFailure::too_large:
      return "too_large";
    case ImageFailure::model_error:
      return "model_error";
    case ImageFailure::object_storage:
      return "object_storage";
    case ImageFailure::other:
      return "other";
  }
  return "other";
}

struct WorkerMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Counter* processed = nullptr;
  std::array<prometheus::Counter*, kFailures.size()> failed{};
  prometheus::Counter* batches = nullptr;
  prometheus::Histogram* batch_seconds = nullptr;
  prometheus::Histogram* queue_wait_seconds = nullptr;
  prometheus::Histogram* model_load_seconds = nullptr;
  prometheus::Gauge* in_flight = nullptr;
  prometheus::Counter* dead_letters = nullptr;
  prometheus::Counter* cancelled_dropped = nullptr;
  // Declared after the registry so it stops serving before the registry goes away.
  std::optional<MetricsServer> server;
  std::string endpoint;
};

WorkerMetrics::WorkerMetrics(const std::string& stage) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const prometheus::Labels labels{{"stage", stage}};
  auto& registry = *m.registry;
  m.processed = &prometheus::BuildCounter()
                     .Name("imgpipe_images_processed_total")
                     .Help("Images that came out of this worker's stages")
                     .Labels(labels)
                     .Register(registry)
                     .Add({});
  auto& failures = prometheus::BuildCounter()
                       .Name("imgpipe_image_errors_total")
                       .Help("Images that failed in this worker, by reason class")
                       .Labels(labels)
                       .Register(registry);
  // Every reason exists from the start at 0, so rate() and alerts see a series before the first failure.
  for (std::size_t i = 0; i < kFailures.size(); ++i)
    m.failed[i] = &failures.Add({{"reason", to_string(kFailures[i])}});
  m.batches = &prometheus::BuildCounter()
                   .Name("imgpipe_batches_total")
                   .Help("Batch messages run through this worker's stages")
                   .Labels(labels)
                   .Register(registry)
                   .Add({});
  m.batch_seconds = &prometheus::BuildHistogram()
                         .Name("imgpipe_batch_processing_seconds")
                         .Help("Time to run one batch through this worker's stages")
                         .Labels(labels)
                         .Register(registry)
                         .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                          0.5, 1, 2.5, 5, 10, 30});
  m.queue_wait_seconds = &prometheus::BuildHistogram()
                              .Name("imgpipe_queue_wait_seconds")
                              .Help("Time from a message's publish to the start of its processing")
                              .Labels(labels)
                              .Register(registry)
                              .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.05, 0.1, 0.5, 1,
                                                                               5, 10, 30, 60, 300, 1800});
  m.model_load_seconds =
      &prometheus::BuildHistogram()
           .Name("imgpipe_model_load_seconds")
           .Help("Time to load a model version from the store")
           .Labels(labels)
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60});
  m.in_flight = &prometheus::BuildGauge()
                     .Name("imgpipe_deliveries_in_flight")
                     .Help("Deliveries received from the broker and not yet acked or rejected")
                     .Labels(labels)
                     .Register(registry)
                     .Add({});
  m.dead_letters = &prometheus::BuildCounter()
                        .Name("imgpipe_dead_lettered_total")
                        .Help("Messages this worker dead-lettered because it could not decode them")
                        .Labels(labels)
                        .Register(registry)
                        .Add({});
  m.cancelled_dropped = &prometheus::BuildCounter()
                             .Name("imgpipe_cancelled_dropped_total")
                             .Help("Deliveries of cancelled jobs acked and dropped before any stage ran")
                             .Labels(labels)
                             .Register(registry)
                             .Add({});
}

void WorkerMetrics::serve(const std::string& address, int port) {
  Impl& m = *impl_;
  if (m.server) throw std::logic_error("metrics are already served on " + m.endpoint);
  const bool ipv6 = address.find(':') != std::string::npos;
  const std::string spec = (ipv6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
  try {
    m.server.emplace(address, port, m.registry);
  } catch (const MetricsUnavailable& error) {
    throw MetricsUnavailable("cannot serve metrics on " + spec + ": " + error.what());
  }
  m.endpoint = spec;
}

WorkerMetrics::~WorkerMetrics() = default;

void WorkerMetrics::images_processed(std::size_t count) {
  impl_->processed->Increment(static_cast<double>(count));
}

void WorkerMetrics::image_failed(ImageFailure failure) {
  impl_->failed[static_cast<std::size_t>(failure)]->Increment();
}

void WorkerMetrics::batch_handled(std::chrono::duration<double> took) {
  impl_->batches->Increment();
  impl_->batch_seconds->Observe(took.count());
}

void WorkerMetrics::queue_wait(std::chrono::duration<double> waited) {
  impl_->queue_wait_seconds->Observe(waited.count());
}

void WorkerMetrics::model_loaded(std::chrono::duration<double> took) {
  impl_->model_load_seconds->Observe(took.count());
}

void WorkerMetrics::deliveries_in_flight(std::size_t held) {
  impl_->in_flight->Set(static_cast<double>(held));
}

void WorkerMetrics::cancelled_dropped() {
  impl_->cancelled_dropped->Increment();
}

void WorkerMetrics::dead_lettered() {
  impl_->dead_letters->Increment();
}

std::string WorkerMetrics::endpoint() const {
  return impl_->endpoint;
}

}  // namespace imgpipe
