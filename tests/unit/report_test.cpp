// The HTML report of a results file, on real photos: what a person must be able to see in it (every
// category with its count, every error with its reason), that it stands alone (thumbnails inline, nothing
// fetched), that text from the results cannot break the page, and that a bad results file is refused by line.
#include <catch2/catch.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "imgpipe/job/results.hpp"
#include "imgpipe/report/html_report.hpp"
#include "imgpipe/report/result_lines.hpp"
#include "imgpipe/report/thumbnail.hpp"
#include "process.hpp"
#include "test_support.hpp"

using namespace imgpipe;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

json photo(const std::string& image, const std::string& label, double score) {
  return {
      {"image", image}, {"label", label}, {"score", score}, {"model", "photos@0123abcd"}, {"error", nullptr}};
}

json failure(const std::string& image, const std::string& reason) {
  return {{"image", image}, {"label", nullptr}, {"score", nullptr}, {"model", "photos"}, {"error", reason}};
}

fs::path write_lines(const fs::path& file, const std::vector<json>& lines) {
  std::ofstream out(file);
  for (const auto& line : lines) out << line.dump() << '\n';
  return file;
}

// A results file as `imgpipe run -o` writes it, over real photographs: one beside the results under a
// relative path, one whose name holds < & ", one that is gone, and two failed images.
struct PhotoResults {
  test::TempDir dir{"imgpipe-report"};
  fs::path odd_name;
  fs::path results;
  PhotoResults() {
    fs::create_directories(dir.path() / "rel");
    fs::copy_file(test::skimage_photo("coffee.png"), dir.path() / "rel" / "coffee.png");
    odd_name = dir.path() / "odd <&\"name\".jpg";
    fs::copy_file(test::opencv_photo("fruits.jpg"), odd_name);
    auto top = photo(test::opencv_photo("baboon.jpg").string(), "baboon", 0.86);
    top["top"] = json::array({json::array({"baboon", 0.86}), json::array({"macaque <monkey>", 0.05})});
    results =
        write_lines(dir.path() / "results.jsonl",
                    {top, photo(test::opencv_photo("messi5.jpg").string(), "soccer ball", 0.65),
                     photo(test::skimage_photo("astronaut.png").string(), "soccer ball", 0.2),
                     photo(odd_name.string(), "soccer ball", 0.1), photo("rel/coffee.png", "espresso", 0.84),
                     photo((dir.path() / "ghost.jpg").string(), "espresso", 0.5),
                     photo(test::opencv_photo("fruits.jpg").string(), "pomegranate & <fig>", 0.4),
                     failure("photos/broken.jpg", "truncated JPEG (no end-of-image marker)"),
                     failure("photos/<script>.png", "not a supported image (first bytes 3c 73 63 72)")});
  }
};

HtmlReport report_of(const fs::path& results, std::size_t max_per_category = 200) {
  ReportOptions options;
  options.title = "results: " + results.filename().string();
  options.results_dir = results.parent_path();
  options.max_per_category = max_per_category;
  return make_html_report(read_result_lines(results), options);
}

}  // namespace

TEST_CASE("a report shows every category with its count, biggest first, and every error with its reason",
          "[report]") {
  PhotoResults photos;
  const HtmlReport report = report_of(photos.results);
  const std::string& html = report.html;

  const auto soccer = html.find("<h2>soccer ball <span class=\"count\">(3)</span></h2>");
  const auto espresso = html.find("<h2>espresso <span class=\"count\">(2)</span></h2>");
  const auto baboon = html.find("<h2>baboon <span class=\"count\">(1)</span></h2>");
  const auto fig = html.find("<h2>pomegranate &amp; &lt;fig&gt; <span class=\"count\">(1)</span></h2>");
  REQUIRE(soccer != std::string::npos);
  REQUIRE(espresso != std::string::npos);
  REQUIRE(baboon != std::string::npos);
  REQUIRE(fig != std::string::npos);
  CHECK(soccer < espresso);
  CHECK(espresso < baboon);
  CHECK(report.summary.categories == 4);
  CHECK(report.summary.images == 9);
  CHECK(report.summary.errors == 2);

  // The summary names the model and counts the errors; the errors section lists each one with its reason.
  CHECK_THAT(html, Catch::Contains("9 images: 7 classified into 4 categories, 2 errors"));
  CHECK_THAT(html, Catch::Contains("photos, photos@0123abcd"));
  CHECK_THAT(html, Catch::Contains("<h2>Errors <span class=\"count\">(2)</span></h2>"));
  CHECK_THAT(html, Catch::Contains("<tr><td>photos/broken.jpg</td><td>truncated JPEG (no end-of-image "
                                   "marker)</td></tr>"));
  CHECK_THAT(html, Catch::Contains("<tr><td>photos/&lt;script&gt;.png</td><td>not a supported image (first "
                                   "bytes 3c 73 63 72)</td></tr>"));
  CHECK_THAT(html, Catch::Contains("macaque &lt;monkey&gt;"));  // a line's "top" classes
}

TEST_CASE("a report stands alone: every photo it could read is an inline JPEG, nothing is fetched",
          "[report]") {
  PhotoResults photos;
  const HtmlReport report = report_of(photos.results);
  const std::string& html = report.html;
  // Six photos are readable, the relative one found beside the results file; the missing one is a box saying
  // why.
  CHECK(report.summary.thumbnails == 6);
  CHECK(report.summary.without_preview == 1);
  CHECK(occurrences(html, "src=\"data:image/jpeg;base64,") == 6);
  CHECK(occurrences(html, "src=") == 6);
  CHECK_THAT(html,
             Catch::Contains("<div class=\"no-preview\">no preview: cannot read " +
                             (photos.dir.path() / "ghost.jpg").string() + ": No such file or directory"));
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
}

TEST_CASE("text from the results is escaped: a path or label holding < & \" cannot change the page",
          "[report]") {
  PhotoResults photos;
  const std::string& html = report_of(photos.results).html;
  CHECK_THAT(html, Catch::Contains("odd &lt;&amp;&quot;name&quot;.jpg"));
  CHECK(html.find("odd <&\"name\".jpg") == std::string::npos);
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("<fig>") == std::string::npos);
  // Every tag on the page is one the report writes.
  const std::regex tag("<([a-zA-Z0-9]+)");
  const std::set<std::string> ours = {
      "html", "head", "meta", "title", "style", "body",   "h1",  "p",          "section", "h2", "table", "tr",
      "th",   "td",   "a",    "span",  "div",   "figure", "img", "figcaption", "ol",      "li", "br"};
  for (auto it = std::sregex_iterator(html.begin(), html.end(), tag); it != std::sregex_iterator(); ++it) {
    INFO((*it)[1].str());
    CHECK(ours.count((*it)[1].str()) == 1);
  }
}

TEST_CASE("a thumbnail fits in 160 px with the photo's aspect and colours, and a broken file says why",
          "[report]") {
  const fs::path fruits = test::opencv_photo("fruits.jpg");
  const Thumbnail thumbnail = make_thumbnail(fruits);
  REQUIRE(thumbnail.ok());
  const cv::Mat decoded = cv::imdecode(thumbnail.jpeg, cv::IMREAD_COLOR);
  const cv::Mat original = cv::imread(fruits.string(), cv::IMREAD_COLOR);
  REQUIRE(!decoded.empty());
  CHECK(std::max(decoded.cols, decoded.rows) == 160);
  CHECK(decoded.cols == thumbnail.width);
  CHECK(decoded.rows == thumbnail.height);
  CHECK(static_cast<double>(decoded.cols) / decoded.rows ==
        Approx(static_cast<double>(original.cols) / original.rows).epsilon(0.02));
  // Same colours in the same channels (a BGR/RGB swap would move blue into red).
  const cv::Scalar thumbnail_mean = cv::mean(decoded);
  const cv::Scalar original_mean = cv::mean(original);
  for (int c = 0; c < 3; ++c) CHECK(thumbnail_mean[c] == Approx(original_mean[c]).margin(4.0));
  CHECK(thumbnail.jpeg.size() < 20000);

  test::TempDir dir;
  const auto truncated = make_thumbnail(test::skimage_photo("truncated.jpg"));
  CHECK_FALSE(truncated.ok());
  CHECK_THAT(truncated.error, Catch::Contains("truncated"));
  test::write_file(dir.path() / "empty.jpg", {});
  CHECK(make_thumbnail(dir.path() / "empty.jpg").error == "empty file (0 bytes)");
  CHECK_THAT(make_thumbnail(dir.path()).error, Catch::Contains("cannot read"));
}

TEST_CASE("a category shows its best-scored photos up to --max-per-category and the page counts the rest",
          "[report]") {
  test::TempDir dir;
  std::vector<json> lines;
  for (int i = 1; i <= 5; ++i) {
    const fs::path file = dir.path() / ("p" + std::to_string(i) + ".jpg");
    fs::copy_file(test::opencv_photo("baboon.jpg"), file);
    lines.push_back(photo(file.string(), "baboon", i));
  }
  const HtmlReport report = report_of(write_lines(dir.path() / "results.jsonl", lines), 2);
  CHECK(report.summary.thumbnails == 2);
  CHECK(report.summary.left_out == 3);
  CHECK_THAT(report.html, Catch::Contains("<h2>baboon <span class=\"count\">(5)</span></h2>"));
  CHECK_THAT(report.html, Catch::Contains("3 more in baboon not shown (at most 2 per category)"));
  CHECK_THAT(report.html, Catch::Contains("3 photos are not shown"));
  CHECK_THAT(report.html, Catch::Contains(">p5.jpg<"));
  CHECK_THAT(report.html, Catch::Contains(">p4.jpg<"));
  CHECK(report.html.find(">p3.jpg<") == std::string::npos);
}

TEST_CASE("results of imgpipe eval carry the true class, and their report shows the confusion matrix",
          "[report]") {
  // write_results adds "truth" only when given the true classes: run/submit lines stay as they were.
  const std::vector<JobInput> inputs = {
      {"0", "cats/a.png", {}}, {"1", "cats/b.png", {}}, {"2", "dogs/c.png", {}}};
  JobResults results(inputs);
  results.add({"0", "cat", 1.5, ""}, "v1");
  results.add({"1", "dog", 0.5, ""}, "v1");
  results.add({"2", "", 0.0, "empty file (0 bytes)"}, "v1");
  std::ostringstream plain;
  write_results(plain, OutputFormat::jsonl, inputs, results, "pets");
  CHECK(plain.str().find("truth") == std::string::npos);
  std::ostringstream with_truth;
  const std::vector<std::string> truth = {"cat", "cat", "dog"};
  write_results(with_truth, OutputFormat::jsonl, inputs, results, "pets", truth);
  std::istringstream in(with_truth.str());
  const auto lines = parse_result_lines(in, "eval.jsonl");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].truth == "cat");
  CHECK(lines[2].truth == "dog");
  CHECK(lines[2].error == "empty file (0 bytes)");

  test::TempDir dir;
  std::ofstream(dir.path() / "eval.jsonl") << with_truth.str();
  const std::string html = report_of(dir.path() / "eval.jsonl").html;
  CHECK_THAT(html, Catch::Contains("<h2>Confusion matrix</h2>"));
  CHECK_THAT(html, Catch::Contains("accuracy 33.3% (1 of 3 images)"));
  // Row cat: one right (green, half the row), one taken for a dog (red); row dog: its one image failed.
  CHECK_THAT(html,
             Catch::Contains("<tr><th>cat</th><td class=\"n\" style=\"background:rgba(45,164,78,0.575)\""));
  CHECK_THAT(html,
             Catch::Contains("<td class=\"n\" style=\"background:rgba(207,34,46,0.575)\" title=\"50.0% of "
                             "cat\">1</td><td class=\"n\">0</td><td class=\"n\">2</td></tr>"));
  CHECK_THAT(html,
             Catch::Contains("<tr><th>dog</th><td class=\"n\">0</td><td class=\"n\">0</td><td class=\"n\" "
                             "style=\"background:rgba(207,34,46,1)\""));
  CHECK_THAT(html, Catch::Contains("true class: cat"));  // the photo taken for a dog says what it is
}

TEST_CASE("a malformed results line is refused with its line number", "[report]") {
  const auto [text, reason] = GENERATE(table<std::string, std::string>({
      {"{\"image\":\"a.jpg\",\"label\":\"x\"}\n{not json\n", "line 2: not JSON"},
      {"{\"image\":\"a.jpg\",\"label\":\"x\"}\n\n[1,2]\n", "line 3: not a JSON object"},
      {"{\"label\":\"x\",\"score\":1}\n", "line 1: no \"image\""},
      {"{\"image\":\"a.jpg\",\"label\":7}\n", "line 1: \"label\" is not a string"},
      {"{\"image\":\"a.jpg\",\"label\":\"x\",\"score\":\"high\"}\n", "line 1: \"score\" is not a number"},
      {"{\"image\":\"a.jpg\",\"label\":null,\"error\":null}\n",
       "line 1: neither a \"label\" nor an \"error\""},
      {"{\"image\":\"a.jpg\",\"label\":\"x\",\"top\":[[\"x\"]]}\n", "line 1: \"top\" holds [\"x\"]"},
  }));
  std::istringstream in(text);
  CHECK_THROWS_WITH(parse_result_lines(in, "r.jsonl"), Catch::StartsWith("r.jsonl " + reason));
}

TEST_CASE("imgpipe report exits 2 for a missing or malformed results file and 1 when it cannot write",
          "[report][tool]") {
  test::TempDir dir;
  const auto tool = test::worker_binary("imgpipe");
  const fs::path bad = dir.path() / "bad.jsonl";
  std::ofstream(bad) << photo(test::opencv_photo("baboon.jpg").string(), "baboon", 1).dump() << "\n"
                     << "{\"image\": \"x.jpg\", \"label\": \n";
  auto run = test::run_tool(tool, {"report", bad.string(), "-o", (dir.path() / "r.html").string()}, 60);
  CHECK(run.exit_code == 2);
  CHECK_THAT(run.err, Catch::Contains("bad.jsonl line 2: not JSON"));
  CHECK_FALSE(fs::exists(dir.path() / "r.html"));

  run = test::run_tool(tool, {"report", (dir.path() / "missing.jsonl").string()}, 60);
  CHECK(run.exit_code == 2);
  CHECK_THAT(run.err, Catch::Contains("missing.jsonl"));

  const fs::path good =
      write_lines(dir.path() / "good.jsonl", {photo(test::opencv_photo("baboon.jpg").string(), "baboon", 1)});
  run = test::run_tool(
      tool, {"report", good.string(), "-o", (dir.path() / "no-such-folder" / "r.html").string()}, 60);
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.err, Catch::Contains("cannot write the report"));

  run = test::run_tool(tool, {"report", "--quiet", good.string()}, 60);  // default: beside, with .html
  CHECK(run.exit_code == 0);
  CHECK_THAT(test::read_text_file(dir.path() / "good.html"), Catch::Contains("<h2>baboon"));
}
