// `imgpipe cancel`: the record that says a job is cancelled, and the bounded memory of cancelled jobs that
// workers and publishers keep while they read the stream of those records (queues::cancelled).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace imgpipe {

// One cancel, as it travels: a small JSON object {"cancel": JOB, "at_ms": ..., "by": ...}.
struct CancelRecord {
  std::string job_id;
  std::int64_t at_ms = 0;  // Unix epoch milliseconds when it was issued
  std::string by;          // who issued it (host and pid), for the operator
};

std::vector<std::uint8_t> encode_cancel(const CancelRecord& record);
// nullopt for a body that is not a cancel record (the stream is ours, but a reader must never fail on it).
std::optional<CancelRecord> decode_cancel(const std::vector<std::uint8_t>& body);

// The most recent `capacity` cancelled job ids: a worker asks about every delivery, so lookups are
// logarithmic, and the oldest ids are forgotten first. A job forgotten this way is long over: the stream
// itself keeps only a bounded tail of records (topology), and this holds more than that tail.
class CancelledJobs {
 public:
  explicit CancelledJobs(std::size_t capacity = 16384) : capacity_(capacity == 0 ? 1 : capacity) {}
  // True when the job was not known yet.
  bool add(const std::string& job_id);
  bool contains(const std::string& job_id) const { return known_.count(job_id) > 0; }
  std::size_t size() const { return known_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  std::set<std::string> known_;
  std::deque<std::string> order_;  // oldest first
};

}  // namespace imgpipe
