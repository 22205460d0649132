#include "fault_harness.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "imgpipe/pipeline/stage_graph.hpp"
#include "imgpipe/transport/amqp/broker.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"

namespace imgpipe::test::fault {
namespace fs = std::filesystem;

namespace {
constexpr const char* kNoResult = "no result (the job did not finish)";

BrokerSession session(int delivery_limit) {
  BrokerOptions options;
  options.delivery_limit = delivery_limit;
  return BrokerSession(BrokerAddress::parse(broker_url()), options);
}

std::string slurp_if_exists(const fs::path& file) {
  if (!fs::exists(file)) return "";
  return read_text_file(file);
}
}  // namespace

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  try {
    return std::stoi(value);
  } catch (const std::exception&) {
    FAIL(std::string(name) + " must be an integer, not \"" + value + "\"");
  }
  return fallback;
}

int repeat_count() {
  return std::max(1, env_int("IMGPIPE_FAULT_REPEAT", 1));
}

StageQueues::StageQueues(int delivery_limit, Declare declare) : delivery_limit_(delivery_limit) {
  if (declare == Declare::keep_existing) return;
  auto broker = session(delivery_limit);
  for (const char* queue : {queues::images, queues::pixels, queues::features}) broker.delete_queue(queue);
  broker.declare_topology();
}

StageQueues::~StageQueues() {
  try {
    auto broker = session(delivery_limit_);
    for (const char* queue : {queues::images, queues::pixels, queues::features}) broker.delete_queue(queue);
  } catch (const std::exception& error) {
    std::cerr << "could not delete the stage queues after the scenario: " << error.what() << '\n';
  }
}

std::map<std::string, std::uint32_t> StageQueues::ready() const {
  auto broker = session(delivery_limit_);
  std::map<std::string, std::uint32_t> counts;
  for (const char* queue : {queues::images, queues::pixels, queues::features})
    counts[queue] = broker.message_count(queue);
  return counts;
}

std::uint32_t StageQueues::dead_letters() const {
  auto broker = session(delivery_limit_);
  broker.declare_topology();  // imgpipe.dead may not exist yet on a fresh broker
  return broker.message_count(queues::dead);
}

BrokerBack::~BrokerBack() {
  const char* control = std::getenv("IMGPIPE_TEST_BROKER_CTL");
  if (control == nullptr || *control == '\0') return;
  const std::string command = std::string(control) + " start";
  if (std::system(command.c_str()) != 0) std::cerr << "could not start the broker again: " << command << '\n';
}

std::optional<std::uint64_t> rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return std::nullopt;
}

std::optional<double> cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain.
  const auto name_end = text.rfind(')');
  if (name_end == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(name_end + 1));
  std::vector<std::string> values{std::istream_iterator<std::string>(fields), {}};
  if (values.size() < 13) return std::nullopt;
  // Fields 14 and 15 of proc(5): utime and stime in clock ticks; values[0] is field 3.
  const double ticks = static_cast<double>(std::stoull(values[11]) + std::stoull(values[12]));
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

Workers::Workers(const std::vector<std::string>& flags,
                 const std::map<std::string, std::vector<std::string>>& role_flags)
    : flags_(flags), role_flags_(role_flags) {}

Workers::~Workers() {
  for (auto& [role, process] : processes_) process->stop(30);
}

fs::path Workers::log_path(const std::string& role, int incarnation) const {
  return logs_.path() / (role + "-" + std::to_string(incarnation) + ".log");
}

void Workers::start(const std::string& role) {
  if (auto found = processes_.find(role); found != processes_.end()) found->second->stop(30);
  auto flags = flags_;
  if (const auto own = role_flags_.find(role); own != role_flags_.end())
    flags.insert(flags.end(), own->second.begin(), own->second.end());
  const int incarnation = ++incarnations_[role];
  processes_[role] = std::make_unique<ChildProcess>(worker_binary("imgpipe-" + role), flags,
                                                    log_path(role, incarnation), broker_environment());
}

void Workers::start_all() {
  for (const auto& role : kStages) start(role);
}

ChildProcess& Workers::process(const std::string& role) {
  return *processes_.at(role);
}

void Workers::kill_hard(const std::string& role) {
  process(role).kill_hard();
}

bool Workers::consuming(const std::string& role) {
  return process(role).running() &&
         slurp_if_exists(log_path(role, incarnations_[role])).find("consuming imgpipe.") != std::string::npos;
}

int Workers::restart_dead() {
  int restarted = 0;
  for (const auto& role : kStages) {
    if (processes_.count(role) != 0 && !process(role).running()) {
      start(role);
      ++restarted;
    }
  }
  return restarted;
}

int Workers::restarts(const std::string& role) const {
  const auto found = incarnations_.find(role);
  return found == incarnations_.end() ? 0 : found->second - 1;
}

std::string Workers::logs(const std::string& role) const {
  std::string all;
  const auto found = incarnations_.find(role);
  for (int i = 1; found != incarnations_.end() && i <= found->second; ++i)
    all += slurp_if_exists(log_path(role, i));
  return all;
}

void Workers::sample_rss_if_due() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_sample_) return;
  sample_rss(true);
  next_sample_ = now + std::chrono::seconds(1);
}

void Workers::sample_rss(bool warm) {
  for (const auto& role : kStages) {
    if (processes_.count(role) == 0 || !consuming(role)) continue;
    const auto rss = rss_kib(process(role).pid());
    if (!rss) continue;
    auto& track = rss_[role];
    if (track.incarnation != incarnations_[role]) {
      track.incarnation = incarnations_[role];
      track.warm_kib = 0;
    }
    if (warm && track.warm_kib == 0) track.warm_kib = *rss;
    if (warm && track.first_kib == 0) track.first_kib = *rss;
    track.last_kib = *rss;
    track.peak_kib = std::max(track.peak_kib, *rss);
  }
}

std::map<std::string, int> Workers::stop_all() {
  std::map<std::string, int> statuses;
  for (const auto& role : kStages) statuses[role] = process(role).stop(60);
  return statuses;
}

std::map<std::string, int> settle_then_stop(Workers& workers, const StageQueues& queues) {
  // Redelivered duplicates may still travel after the last job ended: wait until every stage queue has
  // stayed empty for two seconds, so stopping a worker returns nothing to its queue.
  auto quiet_since = std::chrono::steady_clock::now();
  wait_until(
      [&] {
        const auto ready = queues.ready();
        const bool empty =
            std::all_of(ready.begin(), ready.end(), [](const auto& q) { return q.second == 0; });
        if (!empty) quiet_since = std::chrono::steady_clock::now();
        return empty && std::chrono::steady_clock::now() - quiet_since >= std::chrono::seconds(2);
      },
      std::chrono::seconds(120));
  return workers.stop_all();
}

std::vector<std::string> worker_flags(int delivery_limit, const std::vector<std::string>& extra) {
  std::vector<std::string> flags = {
      "--models",         models_dir().string(),         "--threads", "1", "--metrics-port", "0",
      "--delivery-limit", std::to_string(delivery_limit)};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

Job::Job(const InputFolder& inputs, int delivery_limit, const std::vector<std::string>& extra_flags)
    : inputs_(inputs) {
  std::vector<std::string> arguments = {"submit",
                                        "--models",
                                        models_dir().string(),
                                        "--model",
                                        "fashion",
                                        "--quiet",
                                        "--idle-timeout",
                                        "300",
                                        "--delivery-limit",
                                        std::to_string(delivery_limit),
                                        "--state-dir",
                                        (dir_.path() / "state").string(),
                                        "-o",
                                        (dir_.path() / "results.jsonl").string()};
  arguments.insert(arguments.end(), extra_flags.begin(), extra_flags.end());
  arguments.push_back(inputs.dir.path().string());
  process_ = std::make_unique<ChildProcess>(worker_binary("imgpipe"), arguments, dir_.path() / "submit.log",
                                            broker_environment());
}

std::string Job::job_id() const {
  // "job 3f2a9c0d11e04b7a: 3009 images" is the publisher's first line.
  const std::string log = slurp_if_exists(dir_.path() / "submit.log");
  const auto start = log.find("job ");
  if (start == std::string::npos) return "";
  const auto end = log.find(':', start);
  return end == std::string::npos ? "" : log.substr(start + 4, end - start - 4);
}

std::size_t Job::done() const {
  const auto id = job_id();
  if (id.empty()) return 0;
  const auto state = dir_.path() / "state" / "jobs" / (id + ".json");
  try {
    return nlohmann::json::parse(slurp_if_exists(state)).value("done", std::size_t{0});
  } catch (const std::exception&) {
    return 0;  // not written yet (it is replaced atomically, so never half-written)
  }
}

JobOutcome Job::finish(std::chrono::seconds timeout) {
  const bool ended = wait_until([&] { return !process_->running(); }, timeout);
  if (!ended) process_->kill_hard();
  JobOutcome outcome;
  outcome.exit_code = process_->stop();
  outcome.log = slurp_if_exists(dir_.path() / "submit.log");
  INFO(outcome.log);
  REQUIRE(ended);
  outcome.job_id = job_id();
  outcome.images = inputs_.total();

  std::map<std::string, std::size_t> lines_of;
  std::map<std::string, std::string> error_of;
  std::istringstream results(slurp_if_exists(dir_.path() / "results.jsonl"));
  std::string line;
  while (std::getline(results, line)) {
    if (line.empty()) continue;
    ++outcome.lines;
    const auto parsed = nlohmann::json::parse(line);
    const std::string image = parsed.at("image");
    ++lines_of[image];
    error_of[image] = parsed["error"].is_string() ? parsed["error"].get<std::string>() : "";
  }
  std::vector<std::string> paths;
  for (const auto& [path, label] : inputs_.true_class) paths.push_back(path);
  for (const auto& [path, reason] : inputs_.expected_error) paths.push_back(path);
  paths.insert(paths.end(), inputs_.photos.begin(), inputs_.photos.end());
  for (const auto& path : paths) {
    if (lines_of.count(path) == 0 || error_of[path] == kNoResult)
      ++outcome.lost;
    else
      ++outcome.results;
  }
  const auto state = dir_.path() / "state" / "jobs" / (outcome.job_id + ".json");
  outcome.duplicates = nlohmann::json::parse(slurp_if_exists(state)).value("duplicates", std::size_t{0});
  return outcome;
}

void check_job(const InputFolder& inputs, const JobOutcome& outcome) {
  INFO("job " << outcome.job_id << "\n" << outcome.log);
  CHECK(outcome.exit_code == 3);  // the folder's broken files fail, each with its own line
  CHECK(outcome.lines == inputs.total());
  CHECK(outcome.results == inputs.total());
  CHECK(outcome.lost == 0);
}

void check_quiet_queues(const StageQueues& queues, std::uint32_t dead_letters_before) {
  for (const auto& [queue, ready] : queues.ready()) {
    INFO(queue);
    CHECK(ready == 0);
  }
  CHECK(queues.dead_letters() == dead_letters_before);
}

void check_rss(Workers& workers, bool long_lived) {
  const std::uint64_t limit_kib =
      static_cast<std::uint64_t>(env_int("IMGPIPE_FAULT_MAX_RSS_MB", 1024)) * 1024;
  for (const auto& role : kStages) {
    const auto& track = workers.rss(role);
    INFO(role << " RSS warm " << track.warm_kib << " KiB, last " << track.last_kib << " KiB, peak "
              << track.peak_kib << " KiB");
    CHECK(track.peak_kib > 0);
    CHECK(track.peak_kib <= limit_kib);
    if (long_lived) {
      CHECK(track.warm_kib > 0);
      CHECK(track.last_kib <= track.warm_kib + track.warm_kib / 4 + 64 * 1024);
    }
  }
}

void Tally::add(const JobOutcome& outcome) {
  ++jobs;
  images += outcome.images;
  results += outcome.results;
  duplicates += outcome.duplicates;
  lost += outcome.lost;
}

void Tally::print() const {
  std::ostringstream line;
  line << "FAULT-SUMMARY scenario=\"" << scenario << "\" runs=" << runs << " jobs=" << jobs
       << " images=" << images << " results=" << results << " duplicates=" << duplicates << " lost=" << lost;
  if (!kills.empty()) {
    line << " kills=";
    bool first = true;
    for (const auto& [stage, count] : kills) {
      line << (first ? "" : ",") << stage << ":" << count;
      first = false;
    }
  }
  if (!note.empty()) line << " note=\"" << note << "\"";
  std::cout << line.str() << std::endl;
}

}  // namespace imgpipe::test::fault
