// Which files a job takes from the paths the user gives: symlinks out of a named folder are refused, loops
// and broken links get a line each, and what travels in messages is the bytes, never the path.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>

#include "imgpipe/job/batching.hpp"
#include "imgpipe/messages/codec.hpp"
#include "test_support.hpp"

using namespace imgpipe;
namespace fs = std::filesystem;

namespace {

std::string error_reading(const JobInput& input) {
  const ReadOutcome outcome = read_input(input, 64u << 20);
  if (outcome.image) return "(read " + std::to_string(outcome.image->bytes.size()) + " bytes)";
  return outcome.error->error;
}

const JobInput& named(const std::vector<JobInput>& inputs, const fs::path& path) {
  const auto found =
      std::find_if(inputs.begin(), inputs.end(), [&](const JobInput& input) { return input.path == path; });
  INFO(path);
  REQUIRE(found != inputs.end());
  return *found;
}

}  // namespace

TEST_CASE("a symlink in an input folder that resolves outside it is refused, not followed", "[job][paths]") {
  test::TempDir root;
  const fs::path folder = root.path() / "photos";
  const fs::path elsewhere = root.path() / "elsewhere";
  fs::create_directories(folder / "sub");
  fs::create_directories(elsewhere);
  fs::copy_file(test::opencv_photo("fruits.jpg"), elsewhere / "secret.jpg");
  fs::copy_file(test::opencv_photo("fruits.jpg"), folder / "real.jpg");
  fs::create_symlink(elsewhere / "secret.jpg", folder / "out.jpg");
  fs::create_symlink("../../elsewhere/secret.jpg", folder / "sub" / "relative out.jpg");
  fs::create_symlink("../real.jpg", folder / "sub" / "in.jpg");
  fs::create_symlink("/dev/zero", folder / "device.jpg");
  fs::create_directory_symlink(elsewhere, folder / "linked-folder");

  const auto inputs = collect_inputs({folder.string()});
  // The symlinked folder is not entered: nothing from `elsewhere` comes in through it.
  CHECK(inputs.size() == 5);
  for (const auto& input : inputs) CHECK(input.path.string().find("linked-folder") == std::string::npos);
  CHECK(error_reading(named(inputs, folder / "out.jpg")) == "symlink points outside the input folder");
  CHECK(error_reading(named(inputs, folder / "sub" / "relative out.jpg")) ==
        "symlink points outside the input folder");
  CHECK(error_reading(named(inputs, folder / "device.jpg")) == "symlink points outside the input folder");
  const auto size = std::to_string(fs::file_size(test::opencv_photo("fruits.jpg")));
  CHECK(error_reading(named(inputs, folder / "sub" / "in.jpg")) == "(read " + size + " bytes)");
  CHECK(error_reading(named(inputs, folder / "real.jpg")) == "(read " + size + " bytes)");

  // Named explicitly, on the command line or in a list, a file is taken as named, wherever it points.
  const auto explicit_inputs = collect_inputs({(folder / "out.jpg").string()});
  REQUIRE(explicit_inputs.size() == 1);
  CHECK(error_reading(explicit_inputs[0]) == "(read " + size + " bytes)");
  // A folder reached through a symlink the user named is itself the boundary.
  const auto through_link = collect_inputs({(folder / "linked-folder").string()});
  REQUIRE(through_link.size() == 1);
  CHECK(error_reading(through_link[0]) == "(read " + size + " bytes)");
}

TEST_CASE("symlink loops and broken symlinks in a folder each get a line with the reason", "[job][paths]") {
  test::TempDir root;
  fs::create_symlink("b.jpg", root.path() / "a.jpg");
  fs::create_symlink("a.jpg", root.path() / "b.jpg");
  fs::create_symlink("missing.jpg", root.path() / "dangling.jpg");
  fs::create_directory_symlink(".", root.path() / "self");  // a folder loop: must not be walked forever
  ::mkfifo((root.path() / "pipe.jpg").c_str(), 0600);

  const auto inputs = collect_inputs({root.path().string()});
  REQUIRE(inputs.size() == 3);  // the FIFO is not a file to collect; the folder loop adds nothing
  CHECK(error_reading(named(inputs, root.path() / "a.jpg")) ==
        "symlink loop (too many levels of symbolic links)");
  CHECK(error_reading(named(inputs, root.path() / "b.jpg")) ==
        "symlink loop (too many levels of symbolic links)");
  CHECK(error_reading(named(inputs, root.path() / "dangling.jpg")) ==
        "broken symlink (its target does not exist)");

  // Named explicitly: the same reasons, and a FIFO is refused without waiting for a writer.
  const auto explicit_inputs =
      collect_inputs({(root.path() / "a.jpg").string(), (root.path() / "dangling.jpg").string(),
                      (root.path() / "pipe.jpg").string(), (root.path() / "nowhere.jpg").string()});
  REQUIRE(explicit_inputs.size() == 4);
  CHECK(error_reading(explicit_inputs[0]) == "symlink loop (too many levels of symbolic links)");
  CHECK(error_reading(explicit_inputs[1]) == "broken symlink (its target does not exist)");
  CHECK(error_reading(explicit_inputs[2]) == "not a regular file");
  CHECK(error_reading(explicit_inputs[3]) == "cannot read file: no such file");
}

TEST_CASE("GIFs and names with spaces or non-ASCII characters are collected from folders", "[job][paths]") {
  test::TempDir root;
  const std::vector<std::string> names = {"anim.GIF", "photo with spaces.jpg", "фото 写真 ünïcødé.png",
                                          "notes.txt"};
  for (const auto& name : names) test::write_file(root.path() / name, {1, 2, 3});
  const auto inputs = collect_inputs({root.path().string()});
  REQUIRE(inputs.size() == 3);
  for (const auto& input : inputs) {
    CHECK(input.path.filename() != "notes.txt");
    CHECK(error_reading(input) == "(read 3 bytes)");
  }
}

TEST_CASE("an image batch on the wire carries the file's bytes and an id, never its path", "[job][paths]") {
  test::TempDir root;
  const fs::path file = root.path() / "very-private-name ünïcødé.jpg";
  fs::copy_file(test::opencv_photo("fruits.jpg"), file);
  const auto inputs = collect_inputs({root.path().string()});
  JobSettings settings;
  std::vector<std::vector<std::uint8_t>> wire;
  for_each_batch(
      inputs, {"job1", "imgpipe.results.job1", "fashion", ""}, settings,
      [&](ImageBatch&& batch) { wire.push_back(encode(batch)); },
      [](const ImageResult& result, const std::string&) { FAIL("unexpected error " << result.error); });
  REQUIRE(wire.size() == 1);
  const std::string body(wire[0].begin(), wire[0].end());
  CHECK(body.find("very-private-name") == std::string::npos);
  CHECK(body.find(root.path().filename().string()) == std::string::npos);
  const auto decoded = std::get<ImageBatch>(decode(wire[0]));
  REQUIRE(decoded.images.size() == 1);
  CHECK(decoded.images[0].image_id == inputs[0].image_id);
  CHECK(decoded.images[0].bytes == test::read_file(test::opencv_photo("fruits.jpg")));
}

TEST_CASE("a folder walk collects HEIC/HEIF/AVIF in any case and names the files it leaves out",
          "[job][paths]") {
  test::TempDir root;
  fs::create_directories(root.path() / "sub");
  for (const std::string name :
       {"a.HEIC", "b.heif", "c.Avif", "d.jpg", "notes.txt", "sub/drawing.xcf", "sub/e.heic", "Makefile"})
    test::write_file(root.path() / name, {1, 2, 3});
  const CollectedInputs collected = gather_inputs({root.path().string()});
  std::vector<std::string> images;
  for (const auto& input : collected.images)
    images.push_back(input.path.lexically_relative(root.path()).string());
  CHECK(images == std::vector<std::string>{"a.HEIC", "b.heif", "c.Avif", "d.jpg", "sub/e.heic"});
  std::vector<std::string> left_out;
  for (const auto& path : collected.not_images)
    left_out.push_back(path.lexically_relative(root.path()).string());
  CHECK(left_out == std::vector<std::string>{"Makefile", "notes.txt", "sub/drawing.xcf"});
  CHECK(collect_inputs({root.path().string()}).size() == 5);
  // A file named explicitly is taken whatever its name: it gets its line, so it is not "skipped".
  const CollectedInputs named = gather_inputs({(root.path() / "notes.txt").string()});
  CHECK(named.images.size() == 1);
  CHECK(named.not_images.empty());
}

TEST_CASE("the skipped files are described with their names, at most ten of them", "[job][paths]") {
  CHECK(describe_not_images({}).empty());
  CHECK(describe_not_images({"photos/a.txt"}) ==
        "skipped 1 file that is not an image by its extension: photos/a.txt");
  CHECK(describe_not_images({"a.txt", "b.xcf"}) ==
        "skipped 2 files that are not images by their extension: a.txt, b.xcf");
  std::vector<fs::path> many;
  for (int i = 0; i < 13; ++i) many.push_back("f" + std::to_string(i) + ".txt");
  CHECK(describe_not_images(many) ==
        "skipped 13 files that are not images by their extension: f0.txt, f1.txt, f2.txt, f3.txt, f4.txt, "
        "f5.txt, f6.txt, f7.txt, f8.txt, f9.txt and 3 more");
}
