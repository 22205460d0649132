#include <iostream>

#include "commands.hpp"
#include "imgpipe/ops/logging.hpp"
#include "imgpipe/training/fashion_mnist.hpp"

namespace imgpipe {

int export_fashion_mnist_command(const std::string& out_dir, const std::string& dataset_dir) {
  try {
    const auto counts = export_fashion_mnist(dataset_dir, out_dir);
    std::cout << "wrote " << counts.train << " train and " << counts.test << " test images to " << out_dir
              << "/{train,test}/<class>/\n";
    return exit_code::ok;
  } catch (const std::exception& error) {
    Logger("imgpipe export-fashion-mnist").error(error.what());
    return exit_code::failed;
  }
}

}  // namespace imgpipe
