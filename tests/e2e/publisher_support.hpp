// Helpers for the publisher-side fault specs (dead letters, resume): the imgpipe tool against the test
// broker, single workers, and reading what ended up in queues.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "e2e_support.hpp"
#include "imgpipe/transport/amqp/broker.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"

namespace imgpipe::test {

inline std::vector<std::string> submit_arguments(const std::vector<std::string>& extra) {
  // The broker URL (with its password) goes in the environment: see broker_environment().
  std::vector<std::string> arguments = {"submit",  "--models", models_dir().string(),
                                        "--model", "fashion",  "--quiet"};
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  return arguments;
}

// `imgpipe submit` with those arguments and the test broker in its environment, run to completion.
inline RunResult run_submit(const std::vector<std::string>& extra) {
  return run_tool(worker_binary("imgpipe"), submit_arguments(extra), 600, broker_environment());
}

// One worker of `role` with its default metrics and one compute thread, stopped (SIGTERM) on destruction.
inline std::unique_ptr<ChildProcess> start_worker(const std::string& role, const std::filesystem::path& log,
                                                  const std::vector<std::string>& extra = {}) {
  std::vector<std::string> flags = {"--models", models_dir().string(), "--threads", "1"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return std::make_unique<ChildProcess>(worker_binary("imgpipe-" + role), flags, log, broker_environment());
}

// The job id that `imgpipe submit` prints first ("job <id>: N images"), once it is in `log`.
inline std::optional<std::string> job_id_in(const std::filesystem::path& log) {
  if (!std::filesystem::exists(log)) return std::nullopt;
  const std::string text = read_text_file(log);
  const auto at = text.find("job ");
  if (at == std::string::npos) return std::nullopt;
  const auto end = text.find(':', at);
  if (end == std::string::npos) return std::nullopt;
  return text.substr(at + 4, end - at - 4);
}

// Takes messages off imgpipe.dead until one whose header `name` is `value` (others' dead letters are
// dropped: the queue is shared and only for inspection in tests).
inline std::optional<IncomingMessage> take_dead_letter(BrokerSession& session, const std::string& name,
                                                       const std::string& value) {
  while (auto message = session.get(queues::dead)) {
    const auto found = message->headers.find(name);
    if (found != message->headers.end() && found->second == value) return message;
  }
  return std::nullopt;
}

}  // namespace imgpipe::test
