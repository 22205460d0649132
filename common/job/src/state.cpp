#include "imgpipe/job/state.hpp"

#include "imgpipe/ops/files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace imgpipe {
namespace {

std::string host_name() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "";
  return name.data();
}

std::filesystem::path state_file(const std::filesystem::path& state_dir, const std::string& job_id) {
  return state_dir / "jobs" / (job_id + ".json");
}

}  // namespace

constexpr double sample_span = 60;  // seconds of samples a state file keeps

nlohmann::json to_json(const JobState& state) {
  nlohmann::json recent = nlohmann::json::array();
  for (const auto& sample : state.recent) recent.push_back({sample.time, sample.done});
  return {{"job", state.job},
          {"model", state.model},
          {"total", state.total},
          {"done", state.done},
          {"failed", state.failed},
          {"duplicates", state.duplicates},
          {"started", state.started},
          {"updated", state.updated},
          {"finished", state.finished ? nlohmann::json(*state.finished) : nlohmann::json(nullptr)},
          {"result_queue", state.result_queue},
          {"host", state.host},
          {"pid", state.pid},
          {"error", state.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(state.error)},
          {"cancelled", state.cancelled ? nlohmann::json(*state.cancelled) : nlohmann::json(nullptr)},
          {"batch_size", state.batch_size},
          {"recent", std::move(recent)}};
}

std::optional<double> rolling_rate(const std::vector<JobState::Sample>& samples, double window) {
  if (samples.size() < 2) return std::nullopt;
  const auto& last = samples.back();
  // The oldest sample in the window; when results come more rarely than that, the one before the newest.
  auto first = std::find_if(samples.begin(), samples.end(), [&](const JobState::Sample& sample) {
    return sample.time >= last.time - window;
  });
  if (first == samples.end() - 1) --first;
  if (last.time - first->time < 1.0 || last.done < first->done) return std::nullopt;
  return static_cast<double>(last.done - first->done) / (last.time - first->time);
}

std::optional<double> eta_seconds(const JobState& state, double now) {
  if (state.phase() != "running" || state.done >= state.total) return std::nullopt;
  std::optional<double> rate = rolling_rate(state.recent);
  double as_of = state.recent.empty() ? state.updated : state.recent.back().time;
  if (!rate && state.recent.size() < 2 && state.done > 0 && state.updated > state.started) {
    // An older publisher's file, without samples: its average rate is all there is.
    rate = static_cast<double>(state.done) / (state.updated - state.started);
    as_of = state.updated;
  }
  if (!rate || *rate <= 0) return std::nullopt;
  return std::max(0.0, static_cast<double>(state.total - state.done) / *rate - (now - as_of));
}

double unix_seconds_now() {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count()) /
         1000.0;
}

std::string JobState::phase() const {
  if (cancelled) return "cancelled";
  if (finished) return error.empty() ? "finished" : "failed";
  if (!host.empty() && host == host_name() && pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 &&
      errno == ESRCH) {
    return "abandoned";
  }
  return "running";
}

std::filesystem::path resolve_state_dir(const std::string& explicit_dir) {
  if (!explicit_dir.empty()) return explicit_dir;
  // The XDG base directory spec: relative values are invalid and must be ignored.
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg == '/') {
    return std::filesystem::path(xdg) / "imgpipe";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::filesystem::path(home) / ".local" / "state" / "imgpipe";
  }
  return {};
}

bool is_valid_job_id(const std::string& job_id) {
  if (job_id.empty() || job_id.size() > 128) return false;
  for (const char c : job_id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

JobState JobState::read(const std::filesystem::path& state_dir, const std::string& job_id) {
  if (!is_valid_job_id(job_id)) {
    throw std::invalid_argument("'" + job_id + "' is not a job id (letters, digits, '-' and '_' only)");
  }
  const auto file = state_file(state_dir, job_id);
  std::ifstream in(file);
  if (!in) {
    throw std::runtime_error(
        "no state for job " + job_id + " in " + state_dir.string() +
        " (submitted with another --state-dir or IMGPIPE_STATE_DIR, or on another machine?)");
  }
  try {
    const auto json = nlohmann::json::parse(in);
    JobState state;
    state.job = json.at("job").get<std::string>();
    state.model = json.at("model").get<std::string>();
    state.total = json.at("total").get<std::size_t>();
    state.done = json.at("done").get<std::size_t>();
    state.failed = json.at("failed").get<std::size_t>();
    state.duplicates = json.value("duplicates", std::size_t{0});
    state.started = json.at("started").get<double>();
    state.updated = json.at("updated").get<double>();
    if (json.contains("finished") && !json.at("finished").is_null())
      state.finished = json.at("finished").get<double>();
    state.result_queue = json.at("result_queue").get<std::string>();
    state.host = json.value("host", std::string());
    state.pid = json.value("pid", 0L);
    if (json.contains("error") && json.at("error").is_string())
      state.error = json.at("error").get<std::string>();
    if (json.contains("cancelled") && json.at("cancelled").is_number())
      state.cancelled = json.at("cancelled").get<double>();
    state.batch_size = json.value("batch_size", std::size_t{0});
    if (json.contains("recent") && json.at("recent").is_array()) {
      for (const auto& sample : json.at("recent")) {
        state.recent.push_back({sample.at(0).get<double>(), sample.at(1).get<std::size_t>()});
      }
    }
    return state;
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error("unreadable job state file " + file.string() + ": " + error.what());
  }
}

JobStateFile::JobStateFile(const std::filesystem::path& state_dir, JobState initial)
    : path_(state_file(state_dir, initial.job)), state_(std::move(initial)) {
  std::error_code error;
  std::filesystem::create_directories(path_.parent_path(), error);
  if (error) {
    throw std::runtime_error("cannot create the job state folder " + path_.parent_path().string() + ": " +
                             error.message());
  }
  state_.started = state_.updated = unix_seconds_now();
  state_.recent = {{state_.started, state_.done}};
  state_.host = host_name();
  state_.pid = static_cast<long>(::getpid());
  write();
}

void JobStateFile::update(const JobResults& results, std::chrono::milliseconds interval) {
  if (std::chrono::steady_clock::now() - last_write_ < interval) return;
  take(results);
  write();
}

void JobStateFile::finish(const JobResults& results, const std::string& error) {
  take(results);
  state_.finished = state_.updated;
  state_.error = error;
  write();
}

void JobStateFile::mark_cancelled() {
  if (!state_.cancelled) state_.cancelled = unix_seconds_now();
}

void JobStateFile::take(const JobResults& results) {
  state_.done = results.done();
  state_.failed = results.failed();
  state_.duplicates = results.duplicates();
  state_.updated = unix_seconds_now();
  state_.recent.push_back({state_.updated, state_.done});
  // Keep a minute, and at least two samples so a rate can still be read from a job that stalls.
  while (state_.recent.size() > 2 && state_.recent.front().time < state_.updated - sample_span)
    state_.recent.erase(state_.recent.begin());
}

bool mark_job_cancelled(const std::filesystem::path& state_dir, const std::string& job_id) {
  const auto file = state_file(state_dir, job_id);
  if (!std::filesystem::exists(file)) return false;
  std::ifstream in(file);
  auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) throw std::runtime_error("unreadable job state file " + file.string());
  if (!json.contains("cancelled") || !json.at("cancelled").is_number())
    json["cancelled"] = unix_seconds_now();
  write_file_atomically(file, json.dump() + "\n");
  return true;
}

void JobStateFile::write() {
  write_file_atomically(path_, to_json(state_).dump() + "\n");
  last_write_ = std::chrono::steady_clock::now();
}

}  // namespace imgpipe
