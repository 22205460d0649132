#include "imgpipe/job/state.hpp"

#include "imgpipe/ops/files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

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

nlohmann::json to_json(const JobState& state) {
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
          {"error", state.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(state.error)}};
}

double unix_seconds_now() {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count()) /
         1000.0;
}

std::string JobState::phase() const {
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

void JobStateFile::take(const JobResults& results) {
  state_.done = results.done();
  state_.failed = results.failed();
  state_.duplicates = results.duplicates();
  state_.updated = unix_seconds_now();
}

void JobStateFile::write() {
  write_file_atomically(path_, to_json(state_).dump() + "\n");
  last_write_ = std::chrono::steady_clock::now();
}

}  // namespace imgpipe
