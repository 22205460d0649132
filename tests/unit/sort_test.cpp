// Sorting photos into label folders on real files: hard links to the originals (which stay exactly as they
// were), copies across file systems, safe folder names for any label, a stable rule for two photos of the
// same name, and a second sort of the same results that adds nothing.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <set>

#include "imgpipe/models/model_store.hpp"  // sha256_hex
#include "imgpipe/report/sort_into.hpp"
#include "test_support.hpp"

using namespace imgpipe;
namespace fs = std::filesystem;

namespace {

struct stat stat_of(const fs::path& file) {
  struct stat result {};
  REQUIRE(::stat(file.c_str(), &result) == 0);
  return result;
}

bool same_inode(const fs::path& a, const fs::path& b) {
  const auto first = stat_of(a);
  const auto second = stat_of(b);
  return first.st_dev == second.st_dev && first.st_ino == second.st_ino;
}

// Everything under `dir`, as relative paths: what a sort left behind, and nothing else.
std::set<std::string> tree(const fs::path& dir) {
  std::set<std::string> entries;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    entries.insert(fs::relative(entry.path(), dir).string());
  return entries;
}

struct Original {
  fs::path path;
  std::vector<std::uint8_t> bytes;
  fs::file_time_type mtime;
  explicit Original(fs::path file)
      : path(std::move(file)), bytes(test::read_file(path)), mtime(fs::last_write_time(path)) {}
  void check_untouched() const {
    INFO(path);
    CHECK(fs::exists(path));
    CHECK(fs::last_write_time(path) == mtime);
    CHECK(fs::file_size(path) == bytes.size());
    CHECK(test::read_file(path) == bytes);
  }
};

// Real photos copied into `dir/photos/`, so that their link counts are this test's alone.
std::vector<Original> photos_in(const fs::path& dir) {
  fs::create_directories(dir / "photos");
  std::vector<Original> photos;
  for (const auto& source : {test::opencv_photo("baboon.jpg"), test::opencv_photo("fruits.jpg"),
                             test::opencv_photo("messi5.jpg"), test::skimage_photo("coffee.png")}) {
    fs::copy_file(source, dir / "photos" / source.filename());
    photos.emplace_back(dir / "photos" / source.filename());
  }
  return photos;
}

std::string clash_hash(const fs::path& source) {
  const std::string absolute = fs::absolute(source).lexically_normal().string();
  return sha256_hex(absolute.data(), absolute.size()).substr(0, 8);
}

}  // namespace

TEST_CASE("sorted photos are hard links to the originals, which stay exactly as they were", "[sort]") {
  test::TempDir dir;
  const auto photos = photos_in(dir.path());
  const fs::path sorted = dir.path() / "sorted";
  const auto summary = sort_into_folders({{photos[0].path, "baboon"},
                                          {photos[1].path, "fruit"},
                                          {photos[2].path, "soccer ball"},
                                          {photos[3].path, "fruit"},
                                          {dir.path() / "photos" / "broken.jpg", std::nullopt}},
                                         sorted);
  CHECK(summary.linked == 4);
  CHECK(summary.copied == 0);
  CHECK(summary.failed_images == 1);
  CHECK(summary.folders == 3);
  CHECK(summary.problems.empty());
  CHECK(tree(sorted) == std::set<std::string>{"baboon", "baboon/baboon.jpg", "fruit", "fruit/fruits.jpg",
                                              "fruit/coffee.png", "soccer ball", "soccer ball/messi5.jpg"});
  CHECK(same_inode(sorted / "baboon" / "baboon.jpg", photos[0].path));
  CHECK(same_inode(sorted / "fruit" / "coffee.png", photos[3].path));
  for (const auto& photo : photos) photo.check_untouched();
  CHECK(describe(summary, sorted) == "placed 4 photos into 3 folders under " + sorted.string() +
                                         " (4 linked, 0 copied, 0 already there); 1 failed image not placed");
}

TEST_CASE("a label becomes a folder name that stays inside the folder and fits the file system", "[sort]") {
  CHECK(label_folder_name("great white shark, white shark, man-eater") ==
        "great white shark, white shark, man-eater");
  CHECK(label_folder_name("T-shirt/top") == "T-shirt_top");
  CHECK(label_folder_name("..") == "_.");
  CHECK(label_folder_name(".hidden") == "_hidden");
  CHECK(label_folder_name("") == "_");
  CHECK(label_folder_name(std::string("tab\there\nnul\0x\x7f", 15)) == "tab_here_nul_x_");
  CHECK(label_folder_name(std::string(300, 'x')) == std::string(200, 'x'));
  // 199 bytes, then a two-byte character across the 200-byte cut: the whole character goes.
  CHECK(label_folder_name(std::string(199, 'a') + "\xc3\xa9" + "tail") == std::string(199, 'a'));
  CHECK(label_folder_name(std::string(198, 'a') + "\xc3\xa9" + "tail") == std::string(198, 'a') + "\xc3\xa9");
}

TEST_CASE(
    "two photos of the same name in one label folder: the second gets a stable name, a rerun adds nothing",
    "[sort]") {
  test::TempDir dir;
  fs::create_directories(dir.path() / "a");
  fs::create_directories(dir.path() / "b");
  fs::copy_file(test::opencv_photo("baboon.jpg"), dir.path() / "a" / "photo.jpg");
  fs::copy_file(test::opencv_photo("fruits.jpg"), dir.path() / "b" / "photo.jpg");
  const Original first(dir.path() / "a" / "photo.jpg");
  const Original second(dir.path() / "b" / "photo.jpg");
  const fs::path sorted = dir.path() / "sorted";
  const std::vector<PhotoToPlace> photos = {{first.path, "animal"}, {second.path, "animal"}};

  const auto summary = sort_into_folders(photos, sorted);
  CHECK(summary.linked == 2);
  const std::string clash_name = "photo~" + clash_hash(second.path) + ".jpg";
  CHECK(tree(sorted) == std::set<std::string>{"animal", "animal/photo.jpg", "animal/" + clash_name});
  CHECK(same_inode(sorted / "animal" / "photo.jpg", first.path));
  CHECK(same_inode(sorted / "animal" / clash_name, second.path));

  // Again, and in the other order: every photo is found where it is, nothing is added or renamed.
  for (const auto& again : {photos, std::vector<PhotoToPlace>{photos[1], photos[0]}}) {
    const auto rerun = sort_into_folders(again, sorted);
    CHECK(rerun.linked == 0);
    CHECK(rerun.copied == 0);
    CHECK(rerun.already_placed == 2);
    CHECK(rerun.folders == 1);
    CHECK(tree(sorted) == std::set<std::string>{"animal", "animal/photo.jpg", "animal/" + clash_name});
  }
  first.check_untouched();
  second.check_untouched();
}

TEST_CASE("across file systems the photos are copied, with their time, and a rerun finds the copies",
          "[sort]") {
  // The photos on the temp folder's file system, the sorted folder on /dev/shm (tmpfs), where a hard link
  // fails with EXDEV: the copy fallback runs for real.
  test::TempDir dir;
  const auto photos = photos_in(dir.path());
  const fs::path shm = "/dev/shm";
  if (!fs::is_directory(shm) || stat_of(shm).st_dev == stat_of(dir.path()).st_dev) {
    WARN("skipped: /dev/shm is missing or on the temp folder's file system, so no link can fail with EXDEV");
    return;
  }
  const fs::path sorted = shm / dir.path().filename();  // unique like the temp folder it is named after
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{sorted};

  const std::vector<PhotoToPlace> to_place = {{photos[0].path, "baboon"}, {photos[3].path, "coffee"}};
  const auto summary = sort_into_folders(to_place, sorted);
  CHECK(summary.linked == 0);
  CHECK(summary.copied == 2);
  CHECK(summary.problems.empty());
  CHECK(tree(sorted) == std::set<std::string>{"baboon", "baboon/baboon.jpg", "coffee", "coffee/coffee.png"});
  CHECK_FALSE(same_inode(sorted / "baboon" / "baboon.jpg", photos[0].path));
  CHECK(test::read_file(sorted / "baboon" / "baboon.jpg") == photos[0].bytes);
  CHECK(test::read_file(sorted / "coffee" / "coffee.png") == photos[3].bytes);
  CHECK(fs::last_write_time(sorted / "baboon" / "baboon.jpg") == photos[0].mtime);

  const auto rerun = sort_into_folders(to_place, sorted);
  CHECK(rerun.copied == 0);
  CHECK(rerun.already_placed == 2);
  CHECK(tree(sorted).size() == 4);
  for (const auto& photo : photos) photo.check_untouched();
}

TEST_CASE("a photo that cannot be placed is reported with the reason, and the others are placed", "[sort]") {
  test::TempDir dir;
  const auto photos = photos_in(dir.path());
  const fs::path sorted = dir.path() / "sorted";
  fs::create_directories(sorted);
  std::ofstream(sorted / "fruit") << "a file where the label folder would go";
  const auto summary = sort_into_folders(
      {{dir.path() / "photos" / "gone.jpg", "baboon"}, {photos[1].path, "fruit"}, {photos[0].path, "baboon"}},
      sorted);
  CHECK(summary.linked == 1);
  REQUIRE(summary.problems.size() == 2);
  CHECK(summary.problems[0].source == dir.path() / "photos" / "gone.jpg");
  CHECK_THAT(summary.problems[0].reason, Catch::Contains("No such file or directory"));
  CHECK(summary.problems[1].source == photos[1].path);
  CHECK_THAT(describe(summary, sorted), Catch::EndsWith("; 2 photos could not be placed"));
  CHECK(same_inode(sorted / "baboon" / "baboon.jpg", photos[0].path));
}
