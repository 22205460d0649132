// From a folder of photos to something a person looks at, with the real tool: `imgpipe run --sort-into`
// places the classified photos in label folders, `imgpipe report` makes the page, and a real browser
// (headless Chromium, as Debian ships it) renders that page offline and shows every category and error.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <regex>

#include "e2e_support.hpp"
#include "imgpipe/report/sort_into.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {

const fs::path kChromium = "/usr/bin/chromium";  // Debian's package; scripts/install-deps installs it

bool same_inode(const fs::path& a, const fs::path& b) {
  struct stat first {};
  struct stat second {};
  return ::stat(a.c_str(), &first) == 0 && ::stat(b.c_str(), &second) == 0 && first.st_dev == second.st_dev &&
         first.st_ino == second.st_ino;
}

// The page as the browser parsed it (--dump-dom prints the DOM after loading, re-serialised).
RunResult render(const fs::path& page, const fs::path& profile, const std::vector<std::string>& extra) {
  std::vector<std::string> arguments = {"--headless",           "--no-sandbox",
                                        "--disable-gpu",        "--no-first-run",
                                        "--disable-extensions", "--user-data-dir=" + profile.string()};
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  arguments.push_back("file://" + page.string());
  return run_tool(kChromium, arguments, 120, {{"HOME", profile.string()}});
}

}  // namespace

TEST_CASE(
    "imgpipe run --sort-into places the photos by label, and imgpipe report makes a page a browser shows",
    "[e2e][report]") {
  TempDir dir("imgpipe-report-e2e");
  const fs::path photos = dir.path() / "photos";
  fs::create_directories(photos / "more");
  for (const auto& source :
       {opencv_photo("baboon.jpg"), opencv_photo("fruits.jpg"), opencv_photo("messi5.jpg"),
        skimage_photo("coffee.png"), skimage_photo("astronaut.png")}) {
    fs::copy_file(source, photos / source.filename());
  }
  fs::copy_file(opencv_photo("fruits.jpg"), photos / "more" / "odd <&\"name\".jpg");
  fs::copy_file(skimage_photo("truncated.jpg"), photos / "truncated.jpg");
  std::ofstream(photos / "empty.jpg").close();
  const fs::path results = dir.path() / "results.jsonl";
  const fs::path sorted = dir.path() / "sorted";

  const auto run =
      run_tool(worker_binary("imgpipe"), {"run", "--models", models_dir().string(), "--quiet", "-o",
                                          results.string(), "--sort-into", sorted.string(), photos.string()});
  INFO(run.err);
  CHECK(run.exit_code == 3);  // two images failed, each with its line
  const auto lines = lines_by_image(read_text_file(results));
  REQUIRE(lines.size() == 8);
  std::map<std::string, std::size_t> per_label;
  for (const auto& [image, line] : lines) {
    INFO(image);
    CHECK_FALSE(line.contains("truth"));  // run's lines are as they always were
    if (line["label"].is_null()) continue;
    const std::string label = line["label"];
    ++per_label[label];
    CHECK(same_inode(sorted / label_folder_name(label) / fs::path(image).filename(), image));
  }
  CHECK_THAT(run.err,
             Catch::Contains("placed 6 photos into " + std::to_string(per_label.size()) +
                             (per_label.size() == 1 ? " folder" : " folders") + " under " + sorted.string() +
                             " (6 linked, 0 copied, 0 already there); 2 failed images not placed"));

  // The same results sorted again by the separate command: nothing new.
  const auto again = run_tool(worker_binary("imgpipe"), {"sort", results.string(), sorted.string()});
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.err, Catch::Contains("(0 linked, 0 copied, 6 already there)"));

  const fs::path page = dir.path() / "report.html";
  const auto report = run_tool(worker_binary("imgpipe"), {"report", results.string(), "-o", page.string()});
  INFO(report.err);
  REQUIRE(report.exit_code == 0);
  CHECK_THAT(report.err, Catch::Contains("6 thumbnails, 0 photos without preview"));

  INFO("headless Chromium is needed: scripts/install-deps installs the chromium package");
  REQUIRE(fs::exists(kChromium));
  const auto dom = render(page, dir.path() / "chromium", {"--dump-dom"});
  INFO(dom.err);
  REQUIRE(dom.exit_code == 0);
  const std::string& html = dom.out;
  for (const auto& [label, count] : per_label) {
    INFO(label);
    CHECK_THAT(html,
               Catch::Contains(label + " <span class=\"count\">(" + std::to_string(count) + ")</span>"));
  }
  CHECK_THAT(html, Catch::Contains("Errors <span class=\"count\">(2)</span>"));
  CHECK_THAT(html, Catch::Contains("empty file (0 bytes)"));
  CHECK_THAT(html, Catch::Contains("truncated JPEG"));
  CHECK_THAT(html, Catch::Contains("odd &lt;&amp;\"name\".jpg"));  // as text, not markup
  // Six pictures decoded from the page itself: the browser's DOM holds six inline JPEGs and nothing else.
  const std::regex image("<img src=\"data:image/jpeg;base64,");
  CHECK(std::distance(std::sregex_iterator(html.begin(), html.end(), image), std::sregex_iterator()) == 6);

  // A screenshot for a person to look at: kept in the build folder.
  const fs::path screenshot = binary_dir() / "tests" / "report-screenshot.png";
  fs::create_directories(screenshot.parent_path());
  fs::remove(screenshot);
  const auto shot =
      render(page, dir.path() / "chromium",
             {"--screenshot=" + screenshot.string(), "--window-size=1280,1600", "--hide-scrollbars"});
  INFO(shot.err);
  CHECK(shot.exit_code == 0);
  CHECK(fs::file_size(screenshot) > 10000);
}
