// The objects of one batch fetched a few at a time ahead of the image being decoded: a fetch mostly waits on
// the network, so the next ones are on their way while this one decodes. At most `window` objects are in
// flight or held at once (window x --max-file-bytes bounds the memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <vector>

#include "imgpipe/messages/batch.hpp"

namespace imgpipe {

class ObjectPrefetch {
 public:
  using Fetch = std::function<std::vector<std::uint8_t>(const ObjectRef&)>;

  ObjectPrefetch(const std::vector<EncodedImage>& images, Fetch fetch, std::size_t window)
      : images_(images), fetch_(std::move(fetch)), window_(window), pending_(images.size()) {}

  // The bytes of images[index], which must have an object; indexes are taken in increasing order. Rethrows
  // what its fetch threw. Fetches still running when this object goes away are waited for.
  std::vector<std::uint8_t> take(std::size_t index) {
    while (started_ < images_.size() && started_ < index + window_) {
      if (const auto& object = images_[started_].object) {
        pending_[started_] = std::async(std::launch::async, [this, &ref = *object] { return fetch_(ref); });
      }
      ++started_;
    }
    return pending_[index].get();
  }

 private:
  const std::vector<EncodedImage>& images_;
  Fetch fetch_;
  std::size_t window_;
  std::size_t started_ = 0;
  std::vector<std::future<std::vector<std::uint8_t>>> pending_;
};

}  // namespace imgpipe
