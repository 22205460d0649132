#include "messages.hpp"

#include <iomanip>
#include <random>
#include <sstream>
#include <stdexcept>

#include "imgpipe/job/batching.hpp"
#include "imgpipe/job/inputs.hpp"
#include "imgpipe/messages/codec.hpp"
#include "imgpipe/messages/protocol.hpp"

namespace imgpipe::bench {

namespace {

// Ids as gather_inputs numbers a job's images (six digits, zero-padded), so headers have their real length.
std::string image_id(std::size_t index) {
  std::ostringstream id;
  id << std::setw(6) << std::setfill('0') << index;
  return id.str();
}

JobRef bench_job(const std::string& model, bool stamped) {
  const std::string id = new_job_id();
  // Every stage after the first carries the model's version (12 hex digits of its model.json's sha256).
  return JobRef{id, queues::results_for(id), model, stamped ? "39fc63413e2c" : "", 1};
}

// What the later stages send, with the geometry of the model; the tensors' values do not change their size
// (RabbitMQ does not compress), so they are left zero.
Batch synthetic_batch(const MessageSpec& spec, std::size_t first_id, std::mt19937& random) {
  const JobRef job = bench_job(spec.model, true);
  switch (spec.kind) {
    case BatchKind::pixels: {
      PixelBatch batch{job, {}};
      const auto bytes = static_cast<std::size_t>(spec.width) * static_cast<std::size_t>(spec.height) *
                         static_cast<std::size_t>(spec.channels);
      for (std::size_t i = 0; i < spec.batch; ++i)
        batch.images.push_back(PixelImage{image_id(first_id + i), spec.width, spec.height, spec.channels,
                                          std::vector<std::uint8_t>(bytes)});
      return batch;
    }
    case BatchKind::features: {
      FeatureBatch batch{job, {}};
      for (std::size_t i = 0; i < spec.batch; ++i)
        batch.features.push_back(
            FeatureVector{image_id(first_id + i), std::vector<float>(static_cast<std::size_t>(spec.dim))});
      return batch;
    }
    case BatchKind::results: {
      // Labels of the photo model's length and scores with all the digits a double prints with.
      static const char* const labels[] = {"fox squirrel",     "baboon", "espresso", "soccer ball",
                                           "golden retriever", "tabby",  "seashore", "sports car"};
      std::uniform_real_distribution<double> score(0.05, 0.99);
      ResultBatch batch{job, "classify", {}};
      for (std::size_t i = 0; i < spec.batch; ++i)
        batch.results.push_back(ImageResult{image_id(first_id + i), labels[i % 8], score(random), "", {}});
      return batch;
    }
    case BatchKind::images:
      break;
  }
  throw std::logic_error("synthetic_batch: images come from files");
}

}  // namespace

Messages make_messages(const MessageSpec& spec, std::size_t max_bodies) {
  Messages messages;
  std::size_t images = 0;
  if (spec.kind == BatchKind::images) {
    JobSettings settings;
    settings.model = spec.model;
    settings.batch_size = spec.batch;
    settings.max_batch_bytes = spec.max_batch_bytes;
    const JobRef job = bench_job(spec.model, false);
    // Only as many files as the bodies need are read.
    auto inputs = collect_inputs(spec.inputs);
    if (inputs.size() > spec.batch * max_bodies) inputs.resize(spec.batch * max_bodies);
    for_each_batch(
        inputs, job, settings,
        [&](ImageBatch&& batch) {
          if (messages.bodies.size() >= max_bodies) return;
          images += batch.images.size();
          messages.bodies.push_back(encode(batch));
        },
        [](const ImageResult&, const std::string&) {});
    if (messages.bodies.empty()) throw std::runtime_error("no readable image among the inputs");
  } else {
    std::mt19937 random(1);
    for (std::size_t i = 0; i < max_bodies; ++i) {
      messages.bodies.push_back(encode(synthetic_batch(spec, 1 + i * spec.batch, random)));
      images += spec.batch;
    }
  }
  double total = 0.0;
  for (const auto& body : messages.bodies) total += static_cast<double>(body.size());
  messages.mean_bytes = total / static_cast<double>(messages.bodies.size());
  messages.mean_images = static_cast<double>(images) / static_cast<double>(messages.bodies.size());
  return messages;
}

}  // namespace imgpipe::bench
