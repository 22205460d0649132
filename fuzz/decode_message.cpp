// Fuzz target: decode() of an untrusted IMGP message (common/messages/src/codec.cpp).
// Any input must either decode or throw MessageError: no other exception, no crash, no sanitizer report.
// What decodes must survive a round trip: encode() of it decodes to the same batch, so nothing the decoder
// accepts is something a stage could not forward.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "imgpipe/messages/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  imgpipe::Batch batch;
  try {
    batch = imgpipe::decode(std::span<const std::uint8_t>(data, size));
  } catch (const imgpipe::MessageError&) {
    return 0;  // refused with a reason: what a worker dead-letters
  }
  const std::vector<std::uint8_t> again = imgpipe::encode(batch);
  imgpipe::Batch round_trip;
  try {
    round_trip = imgpipe::decode(again);
  } catch (const imgpipe::MessageError& error) {
    std::fprintf(stderr, "a decoded batch re-encodes to a message the decoder refuses: %s\n", error.what());
    std::abort();
  }
  if (!(round_trip == batch)) {
    std::fprintf(stderr, "a decoded batch does not survive encode/decode unchanged\n");
    std::abort();
  }
  return 0;
}
