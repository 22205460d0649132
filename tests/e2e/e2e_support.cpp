#include "e2e_support.hpp"

#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <sstream>

#include "imgpipe/training/fashion_mnist.hpp"

namespace imgpipe::test {
namespace fs = std::filesystem;

InputFolder::InputFolder(std::size_t fashion_images_per_class) : dir("imgpipe-inputs") {
  const auto test_split = load_fashion_mnist(kDefaultFashionMnistDir, FashionMnistSplit::test);
  const auto& classes = fashion_mnist_class_names();
  std::map<int, std::size_t> taken;
  fs::create_directories(dir.path() / "fashion");
  for (std::size_t i = 0; i < test_split.size(); ++i) {
    const int label = test_split.labels[i];
    if (taken[label] >= fashion_images_per_class) continue;
    ++taken[label];
    const cv::Mat image(kFashionMnistSide, kFashionMnistSide, CV_8UC1,
                        const_cast<std::uint8_t*>(test_split.image(i)));
    const fs::path file = dir.path() / "fashion" /
                          (classes[static_cast<std::size_t>(label)] + "-" + std::to_string(i) + ".png");
    REQUIRE(cv::imwrite(file.string(), image));
    true_class[file.string()] = classes[static_cast<std::size_t>(label)];
  }

  const fs::path photos_dir = dir.path() / "photos with spaces";
  fs::create_directories(photos_dir);
  for (const auto& source : {opencv_photo("fruits.jpg"), opencv_photo("baboon.jpg"),
                             skimage_photo("coffee.png"), skimage_photo("camera.png")}) {
    fs::copy_file(source, photos_dir / source.filename());
    photos.push_back((photos_dir / source.filename()).string());
  }

  const fs::path bad = dir.path() / "bad";
  fs::create_directories(bad);
  auto add_bad = [&](const std::string& name, const std::vector<std::uint8_t>& bytes,
                     const std::string& reason) {
    write_file(bad / name, bytes);
    expected_error[(bad / name).string()] = reason;
  };
  add_bad("empty.jpg", {}, "empty file (0 bytes)");
  add_bad("notes.jpg", {'j', 'u', 's', 't', ' ', 't', 'e', 'x', 't', '\n'}, "not a supported image");
  fs::copy_file(skimage_photo("truncated.jpg"), bad / "truncated.jpg");
  expected_error[(bad / "truncated.jpg").string()] = "truncated";
  auto png = read_file(skimage_photo("coffee.png"));
  png.resize(png.size() / 3);
  add_bad("half.png", png, "corrupt or truncated png");
  std::vector<std::uint8_t> bomb = {0x89, 'P',  'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0,    0, 0,
                                    13,   'I',  'H', 'D', 'R',  0,    1,    0x86, 0xA0, 0, 1,
                                    0x86, 0xA0, 8,   0,   0,    0,    0,    0,    0,    0, 0};
  add_bad("bomb.png", bomb, "claims 100000x100000 pixels");
}

Cluster::Cluster(bool fused, const std::vector<std::string>& extra_flags,
                 const std::map<std::string, std::vector<std::string>>& role_flags,
                 const Environment& environment) {
  std::vector<std::string> common = {"--threads", "1"};
  // The committed store unless the flags name another (a spec's own store of several models).
  if (std::find(extra_flags.begin(), extra_flags.end(), "--models") == extra_flags.end())
    common.insert(common.end(), {"--models", models_dir().string()});
  common.insert(common.end(), extra_flags.begin(), extra_flags.end());
  auto start = [&](const std::string& role, std::vector<std::string> flags) {
    flags.insert(flags.begin(), common.begin(), common.end());
    if (const auto own = role_flags.find(role); own != role_flags.end())
      flags.insert(flags.end(), own->second.begin(), own->second.end());
    workers_[role] =
        std::make_unique<ChildProcess>(worker_binary("imgpipe-" + role), flags, log_of(role), environment);
  };
  if (fused) {
    start("feature", {"--with-preprocess"});
  } else {
    start("preprocess", {});
    start("feature", {});
  }
  start("classify", {});
}

ChildProcess& Cluster::worker(const std::string& role) {
  return *workers_.at(role);
}

fs::path Cluster::log_of(const std::string& role) const {
  return logs_.path() / (role + ".log");
}

std::map<std::string, nlohmann::json> lines_by_image(const std::string& jsonl) {
  std::map<std::string, nlohmann::json> lines;
  std::istringstream in(jsonl);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto parsed = nlohmann::json::parse(line);
    const std::string image = parsed.at("image");
    INFO("duplicate output line for " << image);
    REQUIRE(lines.count(image) == 0);
    lines[image] = parsed;
  }
  return lines;
}

void check_every_image_answered(const InputFolder& inputs,
                                const std::map<std::string, nlohmann::json>& lines) {
  CHECK(lines.size() == inputs.total());
  for (const auto& [path, reason] : inputs.expected_error) {
    INFO(path);
    REQUIRE(lines.count(path) == 1);
    CHECK_THAT(lines.at(path)["error"].get<std::string>(), Catch::Contains(reason));
  }
  for (const auto& [path, label] : inputs.true_class) {
    INFO(path);
    REQUIRE(lines.count(path) == 1);
    CHECK(lines.at(path)["label"].is_string());
  }
  for (const auto& path : inputs.photos) {
    INFO(path);
    REQUIRE(lines.count(path) == 1);
    CHECK(lines.at(path)["label"].is_string());
  }
}

}  // namespace imgpipe::test
