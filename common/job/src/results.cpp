#include "imgpipe/job/results.hpp"

#include <iomanip>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace imgpipe {
namespace {

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string format_score(double score) {
  std::ostringstream out;
  out << std::setprecision(6) << score;
  return out.str();
}

}  // namespace

JobResults::JobResults(const std::vector<JobInput>& inputs) : total_(inputs.size()) {
  for (const auto& input : inputs) expected_[input.image_id] = true;
}

JobResults JobResults::indexed(std::size_t total) {
  JobResults results;
  results.total_ = total;
  results.indexed_ = true;
  results.answered_.assign(total, false);
  return results;
}

std::optional<std::size_t> JobResults::index_of(const std::string& image_id) const {
  if (image_id.empty() || image_id.size() > 19) return std::nullopt;
  std::size_t index = 0;
  for (char c : image_id) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + static_cast<std::size_t>(c - '0');
  }
  if (index >= total_ || input_id(index) != image_id) return std::nullopt;
  return index;
}

bool JobResults::add(const ImageResult& result, const std::string& model_version) {
  if (!rest_error_.empty()) return false;  // answered by answer_rest already
  if (indexed_) {
    const auto index = index_of(result.image_id);
    if (!index) {
      ++unknown_;
      return false;
    }
    if (answered_[*index]) {
      ++duplicates_;
      return false;
    }
    answered_[*index] = true;
  } else {
    if (expected_.count(result.image_id) == 0) {
      ++unknown_;
      return false;
    }
    if (results_.count(result.image_id) > 0) {
      ++duplicates_;
      return false;
    }
  }
  results_.emplace(result.image_id, std::make_pair(result, model_version));
  ++done_;
  if (!result.ok()) ++failed_;
  return true;
}

std::size_t JobResults::answer_rest(const std::string& error) {
  if (!rest_error_.empty()) return 0;
  const std::size_t answered = total_ - done_;
  rest_error_ = error.empty() ? "no result" : error;
  done_ = total_;
  failed_ += answered;
  return answered;
}

bool JobResults::answered(const std::string& image_id) const {
  if (!indexed_) return results_.count(image_id) > 0;
  const auto index = index_of(image_id);
  return index && answered_[*index];
}

void JobResults::release(const std::string& image_id) {
  if (!indexed_) throw std::logic_error("JobResults::release: these results keep every image's");
  results_.erase(image_id);
}

const ImageResult* JobResults::find(const std::string& image_id) const {
  auto found = results_.find(image_id);
  return found == results_.end() ? nullptr : &found->second.first;
}

std::string JobResults::model_version_of(const std::string& image_id) const {
  auto found = results_.find(image_id);
  return found == results_.end() ? "" : found->second.second;
}

namespace {

// One input's line: its result, or for an image without one the rest error (answer_rest) or "no result".
void write_line(std::ostream& out, OutputFormat format, const JobInput& input, const JobResults& results,
                const std::string& model, const std::string* truth) {
  const ImageResult* result = results.find(input.image_id);
  const std::string error = result                          ? result->error
                            : !results.rest_error().empty() ? results.rest_error()
                                                            : "no result (the job did not finish)";
  const std::string version = results.model_version_of(input.image_id);
  const std::string model_name = version.empty() ? model : model + "@" + version;
  if (format == OutputFormat::jsonl) {
    nlohmann::json line = {{"image", input.path.string()}, {"model", model_name}};
    if (result && result->ok()) {
      line["label"] = result->label;
      line["score"] = result->score;
      line["error"] = nullptr;
      if (!result->top.empty()) {
        nlohmann::json top = nlohmann::json::array();
        for (const auto& [label, score] : result->top) top.push_back({label, score});
        line["top"] = std::move(top);
      }
    } else {
      line["label"] = nullptr;
      line["score"] = nullptr;
      line["error"] = error;
    }
    if (truth != nullptr) line["truth"] = *truth;
    out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  } else {
    const bool ok = result && result->ok();
    out << csv_field(input.path.string()) << ',' << (ok ? csv_field(result->label) : "") << ','
        << (ok ? format_score(result->score) : "") << ',' << csv_field(model_name) << ','
        << (ok ? "" : csv_field(error));
    if (truth != nullptr) out << ',' << csv_field(*truth);
    out << '\n';
  }
}

void write_header(std::ostream& out, OutputFormat format, bool with_truth) {
  if (format == OutputFormat::csv)
    out << (with_truth ? "image,label,score,model,error,truth\n" : "image,label,score,model,error\n");
}

}  // namespace

void write_results(std::ostream& out, OutputFormat format, const std::vector<JobInput>& inputs,
                   const JobResults& results, const std::string& model, std::span<const std::string> truth) {
  if (!truth.empty() && truth.size() != inputs.size())
    throw std::invalid_argument("write_results: " + std::to_string(truth.size()) + " true classes for " +
                                std::to_string(inputs.size()) + " inputs");
  write_header(out, format, !truth.empty());
  for (std::size_t i = 0; i < inputs.size(); ++i)
    write_line(out, format, inputs[i], results, model, truth.empty() ? nullptr : &truth[i]);
}

ResultLineWriter::ResultLineWriter(std::ostream& out, OutputFormat format, std::string model,
                                   std::unique_ptr<InputSource> inputs, LineFn on_line)
    : out_(out),
      format_(format),
      model_(std::move(model)),
      inputs_(std::move(inputs)),
      on_line_(std::move(on_line)) {
  write_header(out_, format_, false);
}

bool ResultLineWriter::write_pending(JobResults& results, bool force) {
  if (!pending_) {
    if (!inputs_left_) return false;
    pending_ = inputs_->next();
    if (!pending_) {
      inputs_left_ = false;
      return false;
    }
  }
  const ImageResult* result = results.find(pending_->image_id);
  if (result == nullptr && !force && results.rest_error().empty()) return false;
  write_line(out_, format_, *pending_, results, model_, nullptr);
  if (on_line_) on_line_(*pending_, result);
  if (result != nullptr) results.release(pending_->image_id);
  pending_.reset();
  ++written_;
  return true;
}

void ResultLineWriter::write_ready(JobResults& results) {
  const std::size_t before = written_;
  while (write_pending(results, false)) {
  }
  if (written_ != before) out_.flush();
}

void ResultLineWriter::finish(JobResults& results) {
  while (write_pending(results, true)) {
  }
  out_.flush();
}

}  // namespace imgpipe
