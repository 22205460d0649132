// A job's answers: exactly one result per image, however many copies arrive, and the output lines they make.
#pragma once

#include <cstddef>
#include <map>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "imgpipe/job/inputs.hpp"

namespace imgpipe {

// Every image's single result; later copies of an already answered image are counted, not kept.
class JobResults {
 public:
  explicit JobResults(const std::vector<JobInput>& inputs);
  // Returns false when the image was already answered (a redelivery) or is not part of this job.
  bool add(const ImageResult& result, const std::string& model_version);
  std::size_t total() const { return total_; }
  std::size_t done() const { return results_.size(); }
  std::size_t failed() const { return failed_; }
  std::size_t duplicates() const { return duplicates_; }
  std::size_t unknown() const { return unknown_; }
  bool complete() const { return results_.size() == total_; }
  const ImageResult* find(const std::string& image_id) const;
  // Answers every image still without a result with the error `error` (a cancelled job's remaining
  // images); returns how many it answered.
  std::size_t answer_rest(const std::string& error);
  std::string model_version_of(const std::string& image_id) const;

 private:
  std::size_t total_;
  std::map<std::string, std::pair<ImageResult, std::string>> results_;
  std::map<std::string, bool> expected_;
  std::size_t failed_ = 0;
  std::size_t duplicates_ = 0;
  std::size_t unknown_ = 0;
};

enum class OutputFormat { jsonl, csv };

// Writes one line per input, in input order: image, label, score, model, error. `truth`, when given (one per
// input: `imgpipe eval`'s true classes, from the labelled folder), adds a "truth" field (CSV: column).
void write_results(std::ostream& out, OutputFormat format, const std::vector<JobInput>& inputs,
                   const JobResults& results, const std::string& model,
                   std::span<const std::string> truth = {});

}  // namespace imgpipe
