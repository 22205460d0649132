// `imgpipe status`: the operator's view of the pipeline. Queue figures come from the RabbitMQ management
// API rather than AMQP, because AMQP's queue.declare-ok counts only ready messages and knows no rates.
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "imgpipe/job/state.hpp"
#include "imgpipe/messages/protocol.hpp"
#include "imgpipe/ops/bottleneck.hpp"
#include "imgpipe/ops/broker_address.hpp"
#include "imgpipe/ops/logging.hpp"
#include "imgpipe/ops/management_api.hpp"
#include "imgpipe/pipeline/stage_graph.hpp"

namespace imgpipe {
namespace {

struct StageQueue {
  const char* stage;
  const char* queue;
};

// The stage graph's queues in pipeline order, so the table reads like the flow of a message, then the dead
// letters.
std::vector<StageQueue> stage_queues() {
  std::vector<StageQueue> rows;
  for (const auto& stage : stage_graph()) rows.push_back({stage.name, stage.queue});
  rows.push_back({"dead letters", queues::dead});
  return rows;
}

class StatusUsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Submit's default: what a message carries when no job tells status otherwise.
constexpr std::size_t default_images_per_message = 32;

nlohmann::json queue_json(const std::optional<QueueStats>& stats, std::size_t images_per_message) {
  if (!stats) return {{"exists", false}};
  return {{"exists", true},
          {"depth", stats->depth()},
          {"ready", stats->ready},
          {"unacked", stats->unacked},
          {"consumers", stats->consumers},
          {"publish_rate", stats->publish_rate},
          {"deliver_rate", stats->deliver_rate},
          {"ack_rate", stats->ack_rate},
          {"images_rate", stats->ack_rate * static_cast<double>(images_per_message)}};
}

StageFlow flow_of(const std::string& stage, const nlohmann::json& queue) {
  StageFlow flow;
  flow.stage = stage;
  flow.exists = queue["exists"].get<bool>();
  if (!flow.exists) return flow;
  flow.ready = queue["ready"].get<std::uint64_t>();
  flow.unacked = queue["unacked"].get<std::uint64_t>();
  flow.consumers = queue["consumers"].get<std::uint64_t>();
  flow.in_rate = queue["publish_rate"].get<double>();
  flow.out_rate = queue["ack_rate"].get<double>();
  return flow;
}

nlohmann::json job_json(const JobState& state, const std::optional<QueueStats>& result_queue) {
  const double now = unix_seconds_now();
  const double end = state.finished.value_or(state.cancelled.value_or(now));
  const std::string phase = state.phase();
  // The rolling rate (the last 30 s of the state file's samples): what the job does now. The average over
  // the whole job would keep the ETA wrong for long after workers were added, or another job started.
  const auto rate = rolling_rate(state.recent);
  const auto eta = eta_seconds(state, now);
  auto queue = queue_json(result_queue, state.batch_size);
  queue["name"] = state.result_queue;
  nlohmann::json out = to_json(state);
  out["state"] = phase;
  out["elapsed_seconds"] = end - state.started;
  out["rate"] = phase == "running" && rate ? nlohmann::json(*rate) : nlohmann::json(nullptr);
  out["eta_seconds"] = eta ? nlohmann::json(*eta) : nlohmann::json(nullptr);
  out["result_queue"] = queue;
  return out;
}

std::string seconds_text(double seconds) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  if (seconds < 120) {
    out << seconds << " s";
  } else {
    const auto whole = static_cast<long>(std::lround(seconds));
    out << whole / 60 << " min " << whole % 60 << " s";
  }
  return out.str();
}

void print_text(const nlohmann::json& status) {
  std::cout << "management API " << status["management"].get<std::string>() << ", vhost "
            << status["vhost"].get<std::string>() << '\n';
  std::cout << std::left << std::setw(14) << "stage" << std::setw(20) << "queue" << std::right << std::setw(8)
            << "depth" << std::setw(8) << "ready" << std::setw(9) << "unacked" << std::setw(11) << "consumers"
            << std::setw(11) << "publish/s" << std::setw(11) << "deliver/s" << std::setw(9) << "ack/s"
            << std::setw(10) << "images/s" << '\n';
  std::cout << std::fixed << std::setprecision(1);
  for (const auto& queue : status["queues"]) {
    std::cout << std::left << std::setw(14) << queue["stage"].get<std::string>() << std::setw(20)
              << queue["queue"].get<std::string>() << std::right;
    if (!queue["exists"].get<bool>()) {
      std::cout << "  not declared yet (no worker or job has started)\n";
      continue;
    }
    std::cout << std::setw(8) << queue["depth"].get<std::uint64_t>() << std::setw(8)
              << queue["ready"].get<std::uint64_t>() << std::setw(9) << queue["unacked"].get<std::uint64_t>()
              << std::setw(11) << queue["consumers"].get<std::uint64_t>() << std::setw(11)
              << queue["publish_rate"].get<double>() << std::setw(11) << queue["deliver_rate"].get<double>()
              << std::setw(9) << queue["ack_rate"].get<double>() << std::setw(10)
              << queue["images_rate"].get<double>() << '\n';
  }
  std::cout << "images/s: ack/s x " << status["images_per_message"].get<std::size_t>()
            << " images per message (" << status["images_per_message_from"].get<std::string>() << ")\n";
  std::cout << "bottleneck: " << status["bottleneck"]["text"].get<std::string>() << '\n';
  if (!status.contains("job")) return;
  const auto& job = status["job"];
  std::cout << "job " << job["job"].get<std::string>() << " (" << job["model"].get<std::string>()
            << "): " << job["state"].get<std::string>() << ", " << job["done"].get<std::size_t>() << "/"
            << job["total"].get<std::size_t>() << " done, " << job["failed"].get<std::size_t>() << " failed";
  if (job["duplicates"].get<std::size_t>() > 0)
    std::cout << ", " << job["duplicates"].get<std::size_t>() << " duplicates ignored";
  std::cout << ", elapsed " << seconds_text(job["elapsed_seconds"].get<double>());
  if (!job["eta_seconds"].is_null()) std::cout << ", ETA " << seconds_text(job["eta_seconds"].get<double>());
  if (!job["rate"].is_null()) std::cout << " at " << job["rate"].get<double>() << " images/s (last 30 s)";
  std::cout << '\n';
  if (!job["error"].is_null()) std::cout << "  gave up: " << job["error"].get<std::string>() << '\n';
  std::cout << "  result queue " << job["result_queue"]["name"].get<std::string>() << ": ";
  const auto& stats = job["result_queue"];
  if (stats["exists"].get<bool>()) {
    std::cout << stats["depth"].get<std::uint64_t>() << " results waiting for the publisher\n";
  } else {
    std::cout << "gone (deleted when the job finished or was cancelled, or expired)\n";
  }
}

}  // namespace

int status_command(const ToolOptions& tool, const StatusOptions& options) {
  Logger log("imgpipe");
  try {
    BrokerAddress broker;
    ManagementAddress management;
    try {
      // The vhost always comes from the broker URL: the management URL names only where the API listens.
      // With several brokers (a cluster), the management API of the first one listed.
      broker = BrokerList::parse(tool.broker).front();
      management = options.management.empty() ? ManagementAddress::for_broker(broker)
                                              : ManagementAddress::parse(options.management);
    } catch (const std::invalid_argument& error) {
      throw StatusUsageError(error.what());
    }
    std::optional<JobState> job;
    if (!options.job.empty()) {
      const auto dir = resolve_state_dir(options.state_dir);
      if (dir.empty()) throw StatusUsageError("no --state-dir, and neither XDG_STATE_HOME nor HOME is set");
      try {
        job = JobState::read(dir, options.job);
      } catch (const std::invalid_argument& error) {
        throw StatusUsageError(error.what());
      }
    }

    const ManagementClient client(management);
    client.check_vhost(broker.vhost);
    nlohmann::json status = {
        {"management", management.redacted()}, {"vhost", broker.vhost}, {"queues", nlohmann::json::array()}};
    // Rates count messages; a job's state says how many images it put in each, else submit's default.
    const bool from_job = job && job->batch_size > 0;
    const std::size_t images_per_message = from_job ? job->batch_size : default_images_per_message;
    status["images_per_message"] = images_per_message;
    status["images_per_message_from"] =
        from_job ? "job " + job->job + "'s batch size" : std::string("submit's default batch size");
    std::vector<StageFlow> flows;
    for (const auto& [stage, queue] : stage_queues()) {
      auto entry = queue_json(client.queue(broker.vhost, queue), images_per_message);
      entry["stage"] = stage;
      entry["queue"] = queue;
      if (std::string(queue) != queues::dead) flows.push_back(flow_of(stage, entry));
      status["queues"].push_back(std::move(entry));
    }
    const Bottleneck bottleneck = find_bottleneck(flows);
    status["bottleneck"] = {
        {"kind", to_string(bottleneck.kind)},
        {"stage", bottleneck.stage.empty() ? nlohmann::json(nullptr) : nlohmann::json(bottleneck.stage)},
        {"text", bottleneck.text}};
    if (job) status["job"] = job_json(*job, client.queue(broker.vhost, job->result_queue));

    if (options.json) {
      std::cout << status.dump(2) << '\n';
    } else {
      print_text(status);
    }
    return exit_code::ok;
  } catch (const StatusUsageError& error) {
    log.error(error.what());
    return exit_code::usage;
  } catch (const std::exception& error) {
    log.error(std::string("status unavailable: ") + error.what());
    return exit_code::failed;
  }
}

}  // namespace imgpipe
