// One self-contained HTML page of a job's results for a person to look at: a summary, the photos as
// thumbnails grouped by category, every error with its reason, and for `imgpipe eval` results the confusion
// matrix. Everything is inline (CSS, thumbnails as data: URIs), so the file opens offline and can be mailed.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "imgpipe/report/result_lines.hpp"
#include "imgpipe/report/thumbnail.hpp"

namespace imgpipe {

struct ReportOptions {
  std::string title = "imgpipe results";  // shown as the page's title (e.g. the results file's name)
  // Relative image paths are looked up in the current directory first, then here (resolve_image_path).
  std::filesystem::path results_dir;
  // Thumbnails per category at most, the best-scored first; the page says how many were left out. Keeps a
  // page of a large job small enough for a browser (about 5-10 KB per thumbnail).
  std::size_t max_per_category = 200;
  ThumbnailOptions thumbnail;
  unsigned threads = 0;  // thumbnails made in parallel; 0 = one per core
};

// What the page shows, in numbers: for the command's message and for checks.
struct ReportSummary {
  std::size_t images = 0;
  std::size_t categories = 0;
  std::size_t errors = 0;
  std::size_t thumbnails = 0;       // made from the photos
  std::size_t without_preview = 0;  // photos that could not be read or decoded: a box with the reason
  std::size_t left_out = 0;         // over --max-per-category, not on the page
};

struct HtmlReport {
  std::string html;
  ReportSummary summary;
};

HtmlReport make_html_report(const std::vector<ResultLine>& lines, const ReportOptions& options);

// Text for HTML element content and quoted attribute values: & < > " ' as character references.
std::string html_escape(const std::string& text);

}  // namespace imgpipe
