// The results file as other programs read it back: the JSON Lines that `imgpipe run/submit/eval -o` write,
// parsed and checked line by line, so that the report and the sorter can trust every field they use.
#pragma once

#include <filesystem>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace imgpipe {

struct ResultLine {
  std::size_t line_number = 0;       // in the results file, for messages
  std::string image;                 // the path as the user named it
  std::optional<std::string> label;  // set when the image was classified
  std::optional<double> score;
  std::string model;
  std::optional<std::string> error;                 // set when the image failed (then there is no label)
  std::vector<std::pair<std::string, double>> top;  // optional: the best classes, best first
  std::optional<std::string> truth;  // `imgpipe eval`: the true class, from the labelled folder
  bool ok() const { return !error.has_value(); }
};

// A results file that is not what `imgpipe` writes; what() names the file and the line.
class ResultsFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One ResultLine per non-blank line. A line with an error string is a failed image (its label, if any, is
// ignored); any other line needs a label. Throws ResultsFormatError naming `source` and the line number for
// a line that is not a JSON object of those fields, and std::runtime_error when the file cannot be read.
std::vector<ResultLine> parse_result_lines(std::istream& in, const std::string& source);
std::vector<ResultLine> read_result_lines(const std::filesystem::path& file);

// Where the image of a line is now: results name images as the user named them, so a relative path is
// looked up in the current directory first, then beside the results file. Returns the first that exists
// (the current-directory one when neither does, so that the error names the path the user gave).
std::filesystem::path resolve_image_path(const std::string& image, const std::filesystem::path& results_dir);

}  // namespace imgpipe
