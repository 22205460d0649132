// A job's answers: exactly one result per image, however many copies arrive, and the output lines they make.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
  // The results of these inputs, all kept until the end (local jobs, `imgpipe eval`, tests).
  explicit JobResults(const std::vector<JobInput>& inputs);
  // The results of a job of `total` inputs whose ids are input_id(0..total-1) (a streamed job, read from an
  // inputs file): knowing which images are answered costs a bit each, and a result is held only until its
  // line is written (release()).
  static JobResults indexed(std::size_t total);

  // Returns false when the image was already answered (a redelivery) or is not part of this job.
  bool add(const ImageResult& result, const std::string& model_version);
  std::size_t total() const { return total_; }
  std::size_t done() const { return done_; }
  std::size_t failed() const { return failed_; }
  std::size_t duplicates() const { return duplicates_; }
  std::size_t unknown() const { return unknown_; }
  bool complete() const { return done_ == total_; }
  // Whether the image has its result (released or not).
  bool answered(const std::string& image_id) const;
  // The result of an image, while it is held; null when it has none (yet) or it was released.
  const ImageResult* find(const std::string& image_id) const;
  std::string model_version_of(const std::string& image_id) const;
  // Answers every image still without a result with the error `error` (a cancelled job's remaining
  // images); returns how many it answered. Later results are not taken.
  std::size_t answer_rest(const std::string& error);
  // The error of the images answer_rest answered (they have no result of their own); empty before.
  const std::string& rest_error() const { return rest_error_; }
  // Forgets a result whose line is written; the image stays answered. For indexed results only.
  void release(const std::string& image_id);
  std::size_t held() const { return results_.size(); }

 private:
  JobResults() = default;
  // The index of an input id of an indexed job ("000042" -> 42); nullopt for any other string.
  std::optional<std::size_t> index_of(const std::string& image_id) const;

  std::size_t total_ = 0;
  bool indexed_ = false;
  std::map<std::string, std::pair<ImageResult, std::string>> results_;
  std::map<std::string, bool> expected_;  // not indexed: every id of the job
  std::vector<bool> answered_;            // indexed: one bit per input
  std::size_t done_ = 0;
  std::size_t failed_ = 0;
  std::size_t duplicates_ = 0;
  std::size_t unknown_ = 0;
  std::string rest_error_;
};

enum class OutputFormat { jsonl, csv };

// Writes one line per input, in input order: image, label, score, model, error. `truth`, when given (one per
// input: `imgpipe eval`'s true classes, from the labelled folder), adds a "truth" field (CSV: column).
void write_results(std::ostream& out, OutputFormat format, const std::vector<JobInput>& inputs,
                   const JobResults& results, const std::string& model,
                   std::span<const std::string> truth = {});

// The lines of a job of any size, written in input order as the results arrive: a line goes out as soon as
// its image and every image before it are answered, and its result is then released, so what is held is only
// the results between the oldest unanswered image and the newest answer. Reads the inputs again from its own
// source (the job's inputs file, paths as the user named them).
class ResultLineWriter {
 public:
  using LineFn = std::function<void(const JobInput&, const ImageResult*)>;
  // Writes the CSV header at once. `on_line` (may be empty) sees every line's input and result (null for an
  // image without one) as it is written.
  ResultLineWriter(std::ostream& out, OutputFormat format, std::string model,
                   std::unique_ptr<InputSource> inputs, LineFn on_line = {});
  // Writes the lines of the answered images in a row from the first one not yet written.
  void write_ready(JobResults& results);
  // Writes every line left: the answered images' and, for the others, "no result (the job did not
  // finish)" (or the error answer_rest gave them).
  void finish(JobResults& results);
  std::size_t written() const { return written_; }

 private:
  // Writes the pending input's line when it has a result (or `force`); false when it must wait.
  bool write_pending(JobResults& results, bool force);

  std::ostream& out_;
  OutputFormat format_;
  std::string model_;
  std::unique_ptr<InputSource> inputs_;
  LineFn on_line_;
  std::optional<JobInput> pending_;  // read, its line not yet written
  bool inputs_left_ = true;
  std::size_t written_ = 0;
};

}  // namespace imgpipe
