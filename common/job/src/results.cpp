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

bool JobResults::add(const ImageResult& result, const std::string& model_version) {
  if (expected_.count(result.image_id) == 0) {
    ++unknown_;
    return false;
  }
  if (results_.count(result.image_id) > 0) {
    ++duplicates_;
    return false;
  }
  results_.emplace(result.image_id, std::make_pair(result, model_version));
  if (!result.ok()) ++failed_;
  return true;
}

std::size_t JobResults::answer_rest(const std::string& error) {
  std::size_t answered = 0;
  for (const auto& [image_id, expected] : expected_) {
    if (results_.count(image_id) > 0) continue;
    ImageResult result;
    result.image_id = image_id;
    result.error = error;
    results_.emplace(image_id, std::make_pair(std::move(result), std::string()));
    ++failed_;
    ++answered;
  }
  return answered;
}

const ImageResult* JobResults::find(const std::string& image_id) const {
  auto found = results_.find(image_id);
  return found == results_.end() ? nullptr : &found->second.first;
}

std::string JobResults::model_version_of(const std::string& image_id) const {
  auto found = results_.find(image_id);
  return found == results_.end() ? "" : found->second.second;
}

void write_results(std::ostream& out, OutputFormat format, const std::vector<JobInput>& inputs,
                   const JobResults& results, const std::string& model, std::span<const std::string> truth) {
  if (!truth.empty() && truth.size() != inputs.size())
    throw std::invalid_argument("write_results: " + std::to_string(truth.size()) + " true classes for " +
                                std::to_string(inputs.size()) + " inputs");
  if (format == OutputFormat::csv)
    out << (truth.empty() ? "image,label,score,model,error\n" : "image,label,score,model,error,truth\n");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const JobInput& input = inputs[i];
    const ImageResult* result = results.find(input.image_id);
    const std::string error = result ? result->error : "no result (the job did not finish)";
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
      if (!truth.empty()) line["truth"] = truth[i];
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    } else {
      const bool ok = result && result->ok();
      out << csv_field(input.path.string()) << ',' << (ok ? csv_field(result->label) : "") << ','
          << (ok ? format_score(result->score) : "") << ',' << csv_field(model_name) << ','
          << (ok ? "" : csv_field(error));
      if (!truth.empty()) out << ',' << csv_field(truth[i]);
      out << '\n';
    }
  }
}

}  // namespace imgpipe
