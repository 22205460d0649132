#include "imgpipe/messages/cancellation.hpp"

#include <nlohmann/json.hpp>

namespace imgpipe {

std::vector<std::uint8_t> encode_cancel(const CancelRecord& record) {
  const std::string text =
      nlohmann::json{{"cancel", record.job_id}, {"at_ms", record.at_ms}, {"by", record.by}}.dump();
  return {text.begin(), text.end()};
}

std::optional<CancelRecord> decode_cancel(const std::vector<std::uint8_t>& body) {
  const auto json = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return std::nullopt;
  const auto job = json.find("cancel");
  if (job == json.end() || !job->is_string() || job->get<std::string>().empty()) return std::nullopt;
  CancelRecord record;
  record.job_id = job->get<std::string>();
  if (const auto at = json.find("at_ms"); at != json.end() && at->is_number_integer())
    record.at_ms = at->get<std::int64_t>();
  if (const auto by = json.find("by"); by != json.end() && by->is_string())
    record.by = by->get<std::string>();
  return record;
}

bool CancelledJobs::add(const std::string& job_id) {
  if (!known_.insert(job_id).second) return false;
  order_.push_back(job_id);
  while (order_.size() > capacity_) {
    known_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

}  // namespace imgpipe
