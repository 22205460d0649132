#include "imgpipe/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <optional>

namespace imgpipe {

namespace {

constexpr std::array kFailures = {
    ImageFailure::empty_file, ImageFailure::not_an_image, ImageFailure::unsupported_format,
    ImageFailure::truncated,  ImageFailure::too_large,    ImageFailure::model_error,
    ImageFailure::other};

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// civetweb takes "host:port", with IPv6 hosts in brackets.
std::string listen_spec(const std::string& address, int port) {
  const bool ipv6 = address.find(':') != std::string::npos && address.front() != '[';
  return (ipv6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

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
    case ImageFailure::other:
      return "other";
  }
  return "other";
}

ImageFailure classify_failure(std::string_view stage, std::string_view error) {
  // The texts are those of check_before_decoding and decode_and_fit (preprocess.cpp).
  if (stage != "preprocess") return ImageFailure::model_error;
  if (contains(error, "empty file")) return ImageFailure::empty_file;
  if (contains(error, "not a supported image")) return ImageFailure::not_an_image;
  if (contains(error, "over the limit")) return ImageFailure::too_large;
  if (contains(error, "truncated")) return ImageFailure::truncated;
  if (contains(error, "not supported") || contains(error, "channels"))
    return ImageFailure::unsupported_format;
  // Preprocess loads the model's input geometry too; the store's errors name the model or its files.
  if (contains(error, "model")) return ImageFailure::model_error;
  return ImageFailure::other;
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
  // Declared after the registry so it stops serving before the registry goes away.
  std::optional<prometheus::Exposer> exposer;
  std::string endpoint;
};

WorkerMetrics::WorkerMetrics(const std::string& stage, const std::string& address, int port)
    : impl_(std::make_unique<Impl>()) {
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
  if (port == 0) return;
  const std::string spec = listen_spec(address, port);
  try {
    m.exposer.emplace(spec);
  } catch (const std::exception& error) {
    throw std::runtime_error("cannot serve metrics on " + spec + ": " + error.what());
  }
  m.exposer->RegisterCollectable(m.registry);
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

void WorkerMetrics::dead_lettered() {
  impl_->dead_letters->Increment();
}

std::string WorkerMetrics::endpoint() const {
  return impl_->endpoint;
}

}  // namespace imgpipe
