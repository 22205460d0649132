// imgpipe-feature: consumes imgpipe.pixels (or imgpipe.images with --with-preprocess), publishes features.
#include "imgpipe/worker/worker_flags.hpp"

int main(int argc, char** argv) {
  return imgpipe::worker_main(
      argc, argv, "feature",
      "imgpipe feature worker: pixels -> CNN feature vectors (LibTorch, CUDA if present)",
      /*can_fuse_preprocess=*/true);
}
