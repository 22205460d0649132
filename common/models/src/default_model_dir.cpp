#include "imgpipe/models/model_store.hpp"

#ifndef IMGPIPE_DEFAULT_MODEL_DIR
#define IMGPIPE_DEFAULT_MODEL_DIR "models"
#endif

namespace imgpipe {

std::string default_model_dir() {
  return IMGPIPE_DEFAULT_MODEL_DIR;
}

}  // namespace imgpipe
