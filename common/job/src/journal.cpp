#include "imgpipe/job/journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "imgpipe/ops/files.hpp"

namespace imgpipe {
namespace {
using nlohmann::json;

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& file) {
  throw std::runtime_error("cannot " + what + " the job journal " + file.string() + ": " +
                           std::strerror(errno));
}

json result_to_json(const JournaledResult& entry) {
  const auto& [result, version] = entry;
  json item = {{"id", result.image_id}, {"version", version}};
  if (result.ok()) {
    item["label"] = result.label;
    item["score"] = result.score;
    if (!result.top.empty()) {
      json top = json::array();
      for (const auto& [label, score] : result.top) top.push_back({label, score});
      item["top"] = std::move(top);
    }
  } else {
    item["error"] = result.error;
  }
  return item;
}

JournaledResult result_from_json(const json& item) {
  ImageResult result{item.at("id").get<std::string>(), "", 0.0, ""};
  if (item.contains("error")) {
    result.error = item.at("error").get<std::string>();
  } else {
    result.label = item.at("label").get<std::string>();
    result.score = item.at("score").get<double>();
    if (item.contains("top")) {
      for (const auto& entry : item.at("top"))
        result.top.push_back({entry.at(0).get<std::string>(), entry.at(1).get<double>()});
    }
  }
  return {std::move(result), item.value("version", std::string())};
}

}  // namespace

std::filesystem::path job_record_file(const std::filesystem::path& state_dir, const std::string& job_id) {
  return state_dir / "jobs" / (job_id + ".job.json");
}

std::filesystem::path job_inputs_file(const std::filesystem::path& state_dir, const std::string& job_id) {
  return state_dir / "jobs" / (job_id + ".inputs");
}

std::filesystem::path job_journal_file(const std::filesystem::path& state_dir, const std::string& job_id) {
  return state_dir / "jobs" / (job_id + ".journal");
}

void write_job_record(const std::filesystem::path& state_dir, const JobRecord& record) {
  const json document = {{"job", record.job_id},
                         {"model", record.settings.model},
                         {"batch_size", record.settings.batch_size},
                         {"max_batch_bytes", record.settings.max_batch_bytes},
                         {"top_k", record.settings.top_k},
                         {"max_file_bytes", record.settings.max_file_bytes},
                         {"working_dir", record.working_dir.string()},
                         {"input_count", record.input_count}};
  const auto file = job_record_file(state_dir, record.job_id);
  std::error_code error;
  std::filesystem::create_directories(file.parent_path(), error);
  if (error)
    throw std::runtime_error("cannot create " + file.parent_path().string() + ": " + error.message());
  // Paths are bytes on Linux: invalid UTF-8 must not make the record unwritable.
  write_file_atomically(file, document.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

JobRecord read_job_record(const std::filesystem::path& state_dir, const std::string& job_id) {
  const auto file = job_record_file(state_dir, job_id);
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string() + ": " + std::strerror(errno));
  try {
    const json document = json::parse(in);
    JobRecord record;
    record.job_id = document.at("job").get<std::string>();
    record.settings.model = document.at("model").get<std::string>();
    record.settings.batch_size = document.at("batch_size").get<std::size_t>();
    record.settings.max_batch_bytes = document.at("max_batch_bytes").get<std::size_t>();
    record.settings.top_k = document.value("top_k", 1);
    record.settings.max_file_bytes = document.at("max_file_bytes").get<std::size_t>();
    record.working_dir = document.at("working_dir").get<std::string>();
    if (!document.contains("input_count")) {
      throw std::runtime_error(
          "it was written by an older imgpipe that listed the inputs in it; finish the "
          "job with that version or submit it again");
    }
    record.input_count = document.at("input_count").get<std::size_t>();
    return record;
  } catch (const json::exception& error) {
    throw std::runtime_error("unreadable job record " + file.string() + ": " + error.what());
  } catch (const std::runtime_error& error) {
    throw std::runtime_error("unusable job record " + file.string() + ": " + error.what());
  }
}

JobJournal::JobJournal(const std::filesystem::path& state_dir, const std::string& job_id)
    : path_(job_journal_file(state_dir, job_id)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("open", path_);
}

JobJournal::~JobJournal() {
  if (fd_ >= 0) ::close(fd_);
}

void JobJournal::append(const std::string& line) {
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("append to", path_);
    written += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd_) != 0) fail("sync", path_);
}

void JobJournal::published(const std::vector<std::string>& image_ids) {
  if (image_ids.empty()) return;
  append(json{{"published", image_ids}}.dump() + "\n");
}

void JobJournal::results(const std::vector<JournaledResult>& results) {
  if (results.empty()) return;
  json items = json::array();
  for (const auto& entry : results) items.push_back(result_to_json(entry));
  append(json{{"results", std::move(items)}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

JournalReplay JobJournal::replay(const std::filesystem::path& state_dir, const std::string& job_id) {
  JournalReplay replay;
  const auto file = job_journal_file(state_dir, job_id);
  std::ifstream in(file);
  if (!in) return replay;
  std::string line;
  while (std::getline(in, line)) {
    // Only the last line can be torn (appends are sequential); a torn line was never acted upon.
    if (in.eof()) break;
    const json entry = json::parse(line, nullptr, false);
    if (entry.is_discarded() || !entry.is_object()) {
      throw std::runtime_error("unreadable line in the job journal " + file.string());
    }
    try {
      if (entry.contains("published")) {
        for (const auto& id : entry.at("published")) replay.published.insert(id.get<std::string>());
      }
      if (entry.contains("results")) {
        for (const auto& item : entry.at("results")) replay.results.push_back(result_from_json(item));
      }
    } catch (const json::exception& error) {
      throw std::runtime_error("unreadable line in the job journal " + file.string() + ": " + error.what());
    }
  }
  return replay;
}

void remove_job_record(const std::filesystem::path& state_dir, const std::string& job_id) {
  std::error_code ignored;
  std::filesystem::remove(job_journal_file(state_dir, job_id), ignored);
  std::filesystem::remove(job_record_file(state_dir, job_id), ignored);
  std::filesystem::remove(job_inputs_file(state_dir, job_id), ignored);
}

}  // namespace imgpipe
