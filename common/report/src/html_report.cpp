// The report page, written as one string: inline CSS, thumbnails as data: URIs, every piece of text from the
// results escaped (paths and labels may hold < & " and anything else a file system allows).
#include "imgpipe/report/html_report.hpp"

#include <algorithm>
#include <atomic>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace imgpipe {
namespace {

std::string base64(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned group = (unsigned{bytes[i]} << 16) | (unsigned{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kDigits[(group >> 18) & 63];
    out += kDigits[(group >> 12) & 63];
    out += kDigits[(group >> 6) & 63];
    out += kDigits[group & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned group = unsigned{bytes[i]} << 16;
    out += kDigits[(group >> 18) & 63];
    out += kDigits[(group >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned group = (unsigned{bytes[i]} << 16) | (unsigned{bytes[i + 1]} << 8);
    out += kDigits[(group >> 18) & 63];
    out += kDigits[(group >> 12) & 63];
    out += kDigits[(group >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string format_number(double value, int precision) {
  std::ostringstream out;
  out << std::setprecision(precision) << value;
  return out.str();
}

std::string percent(std::size_t part, std::size_t whole) {
  if (whole == 0) return "0%";
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << 100.0 * static_cast<double>(part) / static_cast<double>(whole)
      << '%';
  return out.str();
}

std::string file_name_of(const std::string& image) {
  const std::string name = std::filesystem::path(image).filename().string();
  return name.empty() ? image : name;
}

struct Category {
  std::string label;
  std::vector<const ResultLine*> photos;  // best score first
};

// Biggest category first (ties by name), so the page opens on where most photos went.
std::vector<Category> group_by_label(const std::vector<ResultLine>& lines) {
  std::map<std::string, std::vector<const ResultLine*>> by_label;
  for (const auto& line : lines) {
    if (line.ok()) by_label[*line.label].push_back(&line);
  }
  std::vector<Category> categories;
  for (auto& [label, photos] : by_label) {
    std::stable_sort(photos.begin(), photos.end(), [](const ResultLine* a, const ResultLine* b) {
      return a->score.value_or(-1e300) > b->score.value_or(-1e300);
    });
    categories.push_back({label, std::move(photos)});
  }
  std::stable_sort(categories.begin(), categories.end(),
                   [](const Category& a, const Category& b) { return a.photos.size() > b.photos.size(); });
  return categories;
}

// Decoding dominates the report's time (a few ms per photo, far more for camera-sized ones): one worker per
// core, each taking the next photo.
std::vector<Thumbnail> make_thumbnails(const std::vector<std::filesystem::path>& files,
                                       const ReportOptions& options) {
  std::vector<Thumbnail> thumbnails(files.size());
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t i = next++; i < files.size(); i = next++) {
      try {
        thumbnails[i] = make_thumbnail(files[i], options.thumbnail);
      } catch (const std::exception& error) {
        thumbnails[i].error = error.what();
      }
    }
  };
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t count =
      std::min<std::size_t>(files.size(), options.threads > 0 ? options.threads : cores);
  {
    std::vector<std::jthread> workers;
    for (std::size_t t = 1; t < count; ++t) workers.emplace_back(work);
    work();
  }
  return thumbnails;
}

constexpr const char* kStyle = R"(
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa;
 margin:0 auto;max-width:1280px;padding:16px 24px}
h1{font-size:24px;margin:8px 0}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a}.count{color:#57606a;font-weight:normal}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px}
figure{margin:0;background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px;min-width:0}
.thumb{height:160px;display:flex;align-items:center;justify-content:center}
.thumb img{max-width:160px;max-height:160px}
.no-preview{width:160px;height:120px;display:flex;align-items:center;justify-content:center;padding:6px;
 box-sizing:border-box;background:#eaeef2;border:1px dashed #8c959f;color:#cf222e;font-size:12px;
 text-align:center;overflow:hidden;overflow-wrap:anywhere}
figcaption{font-size:12px;margin-top:6px;overflow-wrap:anywhere}.score{color:#57606a}
ol.top{margin:4px 0 0;padding-left:18px;color:#57606a}
.more{color:#57606a;font-style:italic}
table.errors td:first-child{overflow-wrap:anywhere;max-width:520px}
table.confusion td.n{min-width:44px}
)";

// The confusion matrix of `imgpipe eval` results: rows the true classes, columns the predicted ones (the true
// classes first, so the diagonal is the diagonal) and errors; each cell shaded by its share of the row.
void write_confusion(std::string& out, const std::vector<ResultLine>& lines) {
  std::set<std::string> truths;
  std::set<std::string> predicted;
  for (const auto& line : lines) {
    if (!line.truth) continue;
    truths.insert(*line.truth);
    if (line.ok()) predicted.insert(*line.label);
  }
  if (truths.empty()) return;
  std::vector<std::string> columns(truths.begin(), truths.end());
  for (const auto& label : predicted) {
    if (truths.count(label) == 0) columns.push_back(label);
  }
  const std::size_t error_column = columns.size();
  std::map<std::string, std::size_t> column_of;
  for (std::size_t c = 0; c < columns.size(); ++c) column_of[columns[c]] = c;
  std::map<std::string, std::vector<std::size_t>> rows;
  std::size_t evaluated = 0;
  std::size_t correct = 0;
  for (const auto& line : lines) {
    if (!line.truth) continue;
    auto& row = rows.try_emplace(*line.truth, columns.size() + 1, 0).first->second;
    ++row[line.ok() ? column_of.at(*line.label) : error_column];
    ++evaluated;
    if (line.ok() && *line.label == *line.truth) ++correct;
  }

  out += "<section id=\"confusion\"><h2>Confusion matrix</h2>\n<p>accuracy " + percent(correct, evaluated) +
         " (" + std::to_string(correct) + " of " + std::to_string(evaluated) +
         " images). Rows: true class; columns: predicted class. A cell's colour is its share of the row: "
         "green on the diagonal (right), red elsewhere (wrong or failed).</p>\n";
  out += "<table class=\"confusion\"><tr><th>true \\ predicted</th>";
  for (const auto& column : columns) out += "<th>" + html_escape(column) + "</th>";
  out += "<th>error</th><th class=\"n\">total</th></tr>\n";
  for (const auto& [truth, row] : rows) {
    std::size_t total = 0;
    for (const auto count : row) total += count;
    out += "<tr><th>" + html_escape(truth) + "</th>";
    for (std::size_t c = 0; c < row.size(); ++c) {
      const double share = total == 0 ? 0.0 : static_cast<double>(row[c]) / static_cast<double>(total);
      const bool right = c < columns.size() && columns[c] == truth;
      out += "<td class=\"n\"";
      if (row[c] > 0) {
        out += std::string(" style=\"background:rgba(") + (right ? "45,164,78," : "207,34,46,") +
               format_number(0.15 + 0.85 * share, 3) + ")\" title=\"" + percent(row[c], total) + " of " +
               html_escape(truth) + "\"";
      }
      out += ">" + std::to_string(row[c]) + "</td>";
    }
    out += "<td class=\"n\">" + std::to_string(total) + "</td></tr>\n";
  }
  out += "</table></section>\n";
}

void write_figure(std::string& out, const ResultLine& line, const Thumbnail& thumbnail) {
  out += "<figure title=\"" + html_escape(line.image) + "\"><div class=\"thumb\">";
  if (thumbnail.ok()) {
    out += "<img src=\"data:image/jpeg;base64," + base64(thumbnail.jpeg) + "\" width=\"" +
           std::to_string(thumbnail.width) + "\" height=\"" + std::to_string(thumbnail.height) + "\" alt=\"" +
           html_escape(file_name_of(line.image)) + "\">";
  } else {
    out += "<div class=\"no-preview\">no preview: " + html_escape(thumbnail.error) + "</div>";
  }
  out += "</div><figcaption><span class=\"name\">" + html_escape(file_name_of(line.image)) + "</span>";
  if (line.score) out += " <span class=\"score\">" + format_number(*line.score, 3) + "</span>";
  if (line.truth && line.truth != line.label) out += "<br>true class: " + html_escape(*line.truth);
  if (!line.top.empty()) {
    out += "<ol class=\"top\">";
    for (const auto& [label, score] : line.top)
      out +=
          "<li>" + html_escape(label) + " <span class=\"score\">" + format_number(score, 3) + "</span></li>";
    out += "</ol>";
  }
  out += "</figcaption></figure>\n";
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

HtmlReport make_html_report(const std::vector<ResultLine>& lines, const ReportOptions& options) {
  HtmlReport report;
  ReportSummary& summary = report.summary;
  const std::vector<Category> categories = group_by_label(lines);
  std::set<std::string> models;
  for (const auto& line : lines) {
    if (!line.model.empty()) models.insert(line.model);
    if (!line.ok()) ++summary.errors;
  }
  summary.images = lines.size();
  summary.categories = categories.size();

  // The photos on the page, in page order, and their thumbnails.
  std::vector<const ResultLine*> shown;
  for (const auto& category : categories) {
    const std::size_t count = std::min(category.photos.size(), options.max_per_category);
    shown.insert(shown.end(), category.photos.begin(), category.photos.begin() + static_cast<long>(count));
    summary.left_out += category.photos.size() - count;
  }
  std::vector<std::filesystem::path> files;
  for (const auto* line : shown) files.push_back(resolve_image_path(line->image, options.results_dir));
  const std::vector<Thumbnail> thumbnails = make_thumbnails(files, options);
  for (const auto& thumbnail : thumbnails) ++(thumbnail.ok() ? summary.thumbnails : summary.without_preview);

  std::string& out = report.html;
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
      html_escape(options.title) + "</title>\n<style>" + kStyle + "</style></head>\n<body>\n";
  out += "<h1>" + html_escape(options.title) + "</h1>\n<p class=\"meta\">" + std::to_string(summary.images) +
         " images: " + std::to_string(summary.images - summary.errors) + " classified into " +
         std::to_string(summary.categories) + (summary.categories == 1 ? " category, " : " categories, ") +
         std::to_string(summary.errors) + (summary.errors == 1 ? " error" : " errors") + ". Model: ";
  std::string model_list;
  for (const auto& model : models) model_list += (model_list.empty() ? "" : ", ") + model;
  out += html_escape(model_list.empty() ? "not named" : model_list) + ".</p>\n";

  out +=
      "<section id=\"summary\"><h2>Summary</h2>\n<table class=\"counts\"><tr><th>category</th>"
      "<th class=\"n\">photos</th><th class=\"n\">share</th></tr>\n";
  for (std::size_t i = 0; i < categories.size(); ++i) {
    out += "<tr><td><a href=\"#category-" + std::to_string(i) + "\">" + html_escape(categories[i].label) +
           "</a></td><td class=\"n\">" + std::to_string(categories[i].photos.size()) +
           "</td><td class=\"n\">" + percent(categories[i].photos.size(), summary.images) + "</td></tr>\n";
  }
  out += "<tr><td><a href=\"#errors\">errors</a></td><td class=\"n\">" + std::to_string(summary.errors) +
         "</td><td class=\"n\">" + percent(summary.errors, summary.images) + "</td></tr>\n</table>\n";
  if (summary.left_out > 0) {
    out += "<p class=\"more\">" + std::to_string(summary.left_out) + " photos are not shown: at most " +
           std::to_string(options.max_per_category) +
           " per category, the best-scored (imgpipe report --max-per-category N).</p>\n";
  }
  out += "</section>\n";

  write_confusion(out, lines);

  std::size_t next_thumbnail = 0;
  for (std::size_t i = 0; i < categories.size(); ++i) {
    const auto& category = categories[i];
    out += "<section class=\"category\" id=\"category-" + std::to_string(i) + "\"><h2>" +
           html_escape(category.label) + " <span class=\"count\">(" + std::to_string(category.photos.size()) +
           ")</span></h2>\n<div class=\"grid\">\n";
    const std::size_t count = std::min(category.photos.size(), options.max_per_category);
    for (std::size_t p = 0; p < count; ++p, ++next_thumbnail)
      write_figure(out, *category.photos[p], thumbnails[next_thumbnail]);
    out += "</div>\n";
    if (count < category.photos.size()) {
      out += "<p class=\"more\">" + std::to_string(category.photos.size() - count) + " more in " +
             html_escape(category.label) + " not shown (at most " + std::to_string(options.max_per_category) +
             " per category).</p>\n";
    }
    out += "</section>\n";
  }

  out += "<section id=\"errors\"><h2>Errors <span class=\"count\">(" + std::to_string(summary.errors) +
         ")</span></h2>\n";
  if (summary.errors == 0) {
    out += "<p>No image failed.</p>\n";
  } else {
    out += "<table class=\"errors\"><tr><th>image</th><th>reason</th></tr>\n";
    for (const auto& line : lines) {
      if (line.ok()) continue;
      out += "<tr><td>" + html_escape(line.image) + "</td><td>" + html_escape(*line.error) + "</td></tr>\n";
    }
    out += "</table>\n";
  }
  out += "</section>\n</body></html>\n";
  return report;
}

}  // namespace imgpipe
