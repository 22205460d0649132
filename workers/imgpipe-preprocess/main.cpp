// imgpipe-preprocess: consumes imgpipe.images, decodes and fits images to the model, publishes pixels.
#include "imgpipe/worker/worker_flags.hpp"

int main(int argc, char** argv) {
  return imgpipe::worker_main(argc, argv, "preprocess",
                              "imgpipe preprocess worker: encoded images -> model-sized pixels (OpenCV)");
}
