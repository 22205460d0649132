// imgpipe-broker-bench: what one RabbitMQ queue and node carry for the pipeline's messages. Publishes real
// encoded batches (persistent, with a confirm window, like the workers) to quorum queues declared like the
// stage queues, while consumers take them with a prefetch and ack, and prints one line of key=value figures:
// messages/s, MB/s, images/s and the broker's CPU. bench/capacity runs it for every stage's messages.
#include <CLI/CLI.hpp>

#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "imgpipe/messages/batch.hpp"
#include "imgpipe/transport/amqp/broker.hpp"
#include "load.hpp"
#include "messages.hpp"

using namespace imgpipe;
using namespace imgpipe::bench;

namespace {

std::string load_average() {
  std::ifstream file("/proc/loadavg");
  std::string one;
  file >> one;
  return one.empty() ? "-" : one;
}

std::string fixed(double value, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

void parse_geometry(const std::string& text, MessageSpec& spec) {
  char x1 = 0;
  char x2 = 0;
  std::istringstream in(text);
  if (!(in >> spec.width >> x1 >> spec.height >> x2 >> spec.channels) || x1 != 'x' || x2 != 'x' ||
      spec.width < 1 || spec.height < 1 || (spec.channels != 1 && spec.channels != 3))
    throw CLI::ValidationError("--geometry", "expected WIDTHxHEIGHTxCHANNELS (channels 1 or 3), got " + text);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("imgpipe-broker-bench: messages/s, MB/s and broker CPU for one kind of pipeline message",
               "imgpipe-broker-bench");
  std::string broker = kDefaultBroker;
  std::string label;
  std::string kind_name = "pixels";
  std::string geometry = "224x224x3";
  bool sizes_only = false;
  MessageSpec spec;
  LoadOptions load;
  std::size_t bodies = 8;
  double max_backlog_mb = 64;
  app.add_option("--broker", broker, "amqp://user:pass@host:port/vhost")->envname("IMGPIPE_BROKER");
  app.add_option("--label", label, "Name printed on the line (default: the kind)");
  app.add_option("--kind", kind_name, "Which stage's message: images, pixels, features or results")
      ->check(CLI::IsMember({"images", "pixels", "features", "results"}))
      ->capture_default_str();
  app.add_option("--batch", spec.batch, "Images per message")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--max-batch-bytes", spec.max_batch_bytes, "images: close a message at this many bytes")
      ->capture_default_str();
  app.add_option("--geometry", geometry, "pixels: the model's input, WIDTHxHEIGHTxCHANNELS")
      ->capture_default_str();
  app.add_option("--dim", spec.dim, "features: values per image")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--model", spec.model, "Model name the batches carry")->capture_default_str();
  app.add_option("--bodies", bodies, "Distinct messages published in turn")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--queues", load.queues, "Queues used at once, each with its own publisher and consumers")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--consumers", load.consumers, "Consumers per stage queue")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--prefetch", load.prefetch)->check(CLI::Range(1, 65535))->capture_default_str();
  app.add_option("--confirm-window", load.confirm_window)->check(CLI::Range(1, 65535))->capture_default_str();
  app.add_option("--seconds", load.seconds, "Measured time")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", load.warmup_seconds, "Seconds before measuring")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-backlog-mb", max_backlog_mb, "Publishers wait while a queue holds this many MB")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--broker-pid", load.broker_pid, "The broker's process (beam.smp), for its CPU");
  app.add_flag("--sizes-only", sizes_only, "Print the messages' sizes and stop (no broker)");
  app.add_option("INPUT", spec.inputs, "images: files, folders or @lists, read as imgpipe submit reads them");
  CLI11_PARSE(app, argc, argv);

  try {
    static const std::map<std::string, BatchKind> kinds = {{"images", BatchKind::images},
                                                           {"pixels", BatchKind::pixels},
                                                           {"features", BatchKind::features},
                                                           {"results", BatchKind::results}};
    spec.kind = kinds.at(kind_name);
    parse_geometry(geometry, spec);
    if (spec.kind == BatchKind::images && spec.inputs.empty())
      throw CLI::ValidationError("INPUT", "--kind images needs image files to pack");
    if (label.empty()) label = kind_name;
    const Messages messages = make_messages(spec, bodies);

    std::ostringstream line;
    line << "label=" << label << " kind=" << kind_name << " message_bytes=" << fixed(messages.mean_bytes, 0)
         << " images_per_message=" << fixed(messages.mean_images, 2)
         << " bytes_per_image=" << fixed(messages.mean_bytes / messages.mean_images, 0);
    if (sizes_only) {
      std::cout << line.str() << std::endl;
      return 0;
    }

    load.address = BrokerAddress::parse(broker);
    // A job's results go to its own classic queue, read by its publisher; every other edge is a stage queue.
    load.queue_kind = spec.kind == BatchKind::results ? QueueKind::result : QueueKind::stage;
    load.max_backlog_bytes = static_cast<std::size_t>(max_backlog_mb * 1e6);
    const LoadResult result = run_load(load, messages);

    const double rate = static_cast<double>(result.consumed) / result.seconds;
    const bool result_queue = load.queue_kind == QueueKind::result;
    line << " queue=" << (result_queue ? "classic" : "quorum") << " queues=" << load.queues
         << " consumers=" << (result_queue ? 1 : load.consumers)
         << " prefetch=" << (result_queue ? 64 : load.prefetch) << " confirm_window=" << load.confirm_window
         << " seconds=" << fixed(result.seconds, 2) << " messages=" << result.consumed
         << " msgs_per_s=" << fixed(rate, 1) << " MB_per_s=" << fixed(rate * messages.mean_bytes / 1e6, 1)
         << " images_per_s=" << fixed(rate * messages.mean_images, 1);
    if (result.cpu.broker) {
      line << " broker_cpu_cores=" << fixed(*result.cpu.broker, 2) << " broker_cpu_us_per_msg="
           << (result.consumed > 0
                   ? fixed(*result.cpu.broker * result.seconds * 1e6 / static_cast<double>(result.consumed),
                           1)
                   : std::string("-"));
    }
    if (result.broker_rss_mb) line << " broker_rss_MB=" << fixed(*result.broker_rss_mb, 0);
    line << " bench_cpu_cores=" << fixed(result.cpu.self, 2)
         << " machine_busy_cores=" << fixed(result.cpu.machine, 2) << " load1=" << load_average()
         << " backlog=" << result.backlog_after;
    std::cout << line.str() << std::endl;
    if (result.consumed == 0) {
      std::cerr << "imgpipe-broker-bench: no message was consumed in " << fixed(result.seconds, 1) << " s\n";
      return 1;
    }
    return 0;
  } catch (const CLI::Error& error) {
    return app.exit(error);
  } catch (const std::exception& error) {
    std::cerr << "imgpipe-broker-bench: " << error.what() << "\n";
    return 1;
  }
}
