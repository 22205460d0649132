// `imgpipe report` and `imgpipe sort`: results made into something a person can look at. The work is in the
// report part (common/report/); this file reads flags' values, prints, and picks exit codes.
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "imgpipe/ops/files.hpp"
#include "imgpipe/report/html_report.hpp"
#include "imgpipe/report/result_lines.hpp"

namespace imgpipe {
int report_command(const ReportCommandOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<ResultLine> lines;
  try {
    lines = read_result_lines(options.results);
  } catch (const std::exception& error) {
    std::cerr << "imgpipe: " << error.what() << "\n";
    return exit_code::usage;
  }
  const std::filesystem::path results(options.results);
  std::filesystem::path output = options.output;
  if (output.empty()) output = std::filesystem::path(results).replace_extension(".html");
  if (std::filesystem::path(output).lexically_normal() == results.lexically_normal()) {
    std::cerr << "imgpipe: the report would overwrite its own results file " << options.results << "\n";
    return exit_code::usage;
  }

  ReportOptions report_options;
  report_options.title = "imgpipe results: " + results.filename().string();
  report_options.results_dir = results.parent_path();
  report_options.max_per_category = options.max_per_category;
  report_options.threads = static_cast<unsigned>(std::max(0, options.threads));
  const HtmlReport report = make_html_report(lines, report_options);
  try {
    write_file_atomically(output, report.html);
  } catch (const std::exception& error) {
    std::cerr << "imgpipe: cannot write the report: " << error.what() << "\n";
    return exit_code::failed;
  }
  if (!options.quiet) {
    const auto& summary = report.summary;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << "report: " << summary.images << " images, " << summary.categories
              << (summary.categories == 1 ? " category, " : " categories, ") << summary.errors
              << (summary.errors == 1 ? " error; " : " errors; ") << summary.thumbnails << " thumbnails, "
              << summary.without_preview << " photos without preview";
    if (summary.left_out > 0) std::cerr << ", " << summary.left_out << " over --max-per-category left out";
    std::cerr << "; " << std::fixed << std::setprecision(1) << seconds << " s, written to " << output.string()
              << "\n";
  }
  return exit_code::ok;
}

bool place_photos(const std::vector<PhotoToPlace>& photos, const std::string& dir) {
  SortSummary summary;
  try {
    summary = sort_into_folders(photos, dir);
  } catch (const std::exception& error) {
    std::cerr << "imgpipe: cannot sort into " << dir << ": " << error.what() << "\n";
    return false;
  }
  for (const auto& problem : summary.problems)
    std::cerr << "imgpipe: not placed: " << problem.source.string() << ": " << problem.reason << "\n";
  std::cerr << describe(summary, dir) << "\n";
  return summary.problems.empty();
}

int sort_command(const std::string& results, const std::string& dir) {
  std::vector<ResultLine> lines;
  try {
    lines = read_result_lines(results);
  } catch (const std::exception& error) {
    std::cerr << "imgpipe: " << error.what() << "\n";
    return exit_code::usage;
  }
  const auto results_dir = std::filesystem::path(results).parent_path();
  std::vector<PhotoToPlace> photos;
  for (const auto& line : lines) photos.push_back({resolve_image_path(line.image, results_dir), line.label});
  return place_photos(photos, dir) ? exit_code::ok : exit_code::failed;
}

}  // namespace imgpipe
