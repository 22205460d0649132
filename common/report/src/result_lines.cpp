// Reading results back: every field is checked here, once, so that a hand-edited or truncated file gives
// "results.jsonl line 7: ..." instead of a report with holes in it.
#include "imgpipe/report/result_lines.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

namespace imgpipe {
namespace {

using nlohmann::json;

std::optional<std::string> optional_string(const json& line, const char* field) {
  const auto found = line.find(field);
  if (found == line.end() || found->is_null()) return std::nullopt;
  if (!found->is_string()) throw std::invalid_argument(std::string("\"") + field + "\" is not a string");
  return found->get<std::string>();
}

std::optional<double> optional_number(const json& line, const char* field) {
  const auto found = line.find(field);
  if (found == line.end() || found->is_null()) return std::nullopt;
  if (!found->is_number()) throw std::invalid_argument(std::string("\"") + field + "\" is not a number");
  return found->get<double>();
}

std::vector<std::pair<std::string, double>> top_classes(const json& line) {
  std::vector<std::pair<std::string, double>> top;
  const auto found = line.find("top");
  if (found == line.end() || found->is_null()) return top;
  if (!found->is_array()) throw std::invalid_argument("\"top\" is not a list of [label, score] pairs");
  for (const auto& entry : *found) {
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number())
      throw std::invalid_argument("\"top\" holds " + entry.dump() + ", not a [label, score] pair");
    top.emplace_back(entry[0].get<std::string>(), entry[1].get<double>());
  }
  return top;
}

ResultLine parse_line(const std::string& text) {
  json line;
  try {
    line = json::parse(text);
  } catch (const json::parse_error& error) {
    throw std::invalid_argument(std::string("not JSON (") + error.what() + ")");
  }
  if (!line.is_object()) throw std::invalid_argument("not a JSON object");
  ResultLine result;
  const auto image = optional_string(line, "image");
  if (!image || image->empty()) throw std::invalid_argument("no \"image\"");
  result.image = *image;
  result.error = optional_string(line, "error");
  result.label = optional_string(line, "label");
  result.score = optional_number(line, "score");
  result.model = optional_string(line, "model").value_or("");
  result.top = top_classes(line);
  result.truth = optional_string(line, "truth");
  if (result.error) {
    result.label.reset();
    result.score.reset();
  } else if (!result.label) {
    throw std::invalid_argument("neither a \"label\" nor an \"error\"");
  }
  return result;
}

}  // namespace

std::vector<ResultLine> parse_result_lines(std::istream& in, const std::string& source) {
  std::vector<ResultLine> lines;
  std::string text;
  for (std::size_t number = 1; std::getline(in, text); ++number) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    try {
      lines.push_back(parse_line(text));
    } catch (const std::invalid_argument& error) {
      throw ResultsFormatError(source + " line " + std::to_string(number) + ": " + error.what());
    }
    lines.back().line_number = number;
  }
  if (in.bad()) throw std::runtime_error("cannot read " + source);
  return lines;
}

std::vector<ResultLine> read_result_lines(const std::filesystem::path& file) {
  std::error_code error;
  if (std::filesystem::is_directory(file, error))
    throw std::runtime_error("cannot read " + file.string() + ": it is a folder");
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string() + ": no such file or not readable");
  return parse_result_lines(in, file.string());
}

std::filesystem::path resolve_image_path(const std::string& image, const std::filesystem::path& results_dir) {
  const std::filesystem::path path(image);
  if (path.is_absolute()) return path;
  std::error_code error;
  if (std::filesystem::exists(path, error)) return path;
  const auto beside_results = (results_dir.empty() ? std::filesystem::path(".") : results_dir) / path;
  if (std::filesystem::exists(beside_results, error)) return beside_results;
  return path;
}

}  // namespace imgpipe
