// Prometheus metrics of one worker process, served on /metrics. prometheus-cpp stays behind pimpl, so only
// metrics.cpp pays for its headers and nothing outside ops/ links against it.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace imgpipe {

// Why an image failed, as a small fixed set: a label value must never be the raw error text, or every
// distinct file name in a message would become a time series.
enum class ImageFailure {
  empty_file,
  not_an_image,
  unsupported_format,
  truncated,
  too_large,
  model_error,
  object_storage,  // an object reference that could not be fetched (missing, changed, refused, unreachable)
  other
};

const char* to_string(ImageFailure failure);

// The endpoint could not listen where asked (the port is taken, or not ours to take): the worker's real work
// does not depend on it, so the worker carries on and says so.
class MetricsUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every metric carries the label stage="<the worker's stage chain>", e.g. "preprocess+feature".
// Thread-safe: the handler records from the compute thread while the exposer serves from its own.
class WorkerMetrics {
 public:
  // The numbers are kept from the start; serve() makes them visible.
  explicit WorkerMetrics(const std::string& stage);
  ~WorkerMetrics();
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  void images_processed(std::size_t count);  // came out of the worker's whole stage chain
  void image_failed(ImageFailure failure);
  void batch_handled(std::chrono::duration<double> took);
  void queue_wait(
      std::chrono::duration<double> waited);  // publish of the message to the start of its handling
  void model_loaded(std::chrono::duration<double> took);
  void deliveries_in_flight(std::size_t held);  // received from the broker, not yet acked or rejected
  void dead_lettered();
  void cancelled_dropped();  // a delivery of a cancelled job, acked and dropped unprocessed

  // Serves http://address:port/metrics from now on. Throws MetricsUnavailable when it cannot listen there,
  // std::invalid_argument when `address` is not an IP address, std::logic_error when already serving.
  void serve(const std::string& address, int port);
  std::string endpoint() const;  // "127.0.0.1:9464", empty when not served

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imgpipe
