// imgpipe-classify: consumes imgpipe.features, publishes one label and score per image to the job's queue.
#include "imgpipe/worker/worker_flags.hpp"

int main(int argc, char** argv) {
  return imgpipe::worker_main(argc, argv, "classify",
                              "imgpipe classify worker: features -> label (dlib linear SVM)");
}
