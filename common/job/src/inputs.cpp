#include "imgpipe/job/inputs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "imgpipe/ops/files.hpp"
#include "imgpipe/storage/s3_uri.hpp"
#include "object_inputs.hpp"

namespace imgpipe {
namespace fs = std::filesystem;

namespace {

struct Walk {
  std::function<void(JobInput&&)> on_input;
  std::size_t count = 0;
  std::vector<fs::path> not_images;
  const S3Client* objects = nullptr;

  void add(fs::path path, fs::path confined_to, std::optional<ObjectRef> object) {
    on_input({input_id(count++), std::move(path), std::move(confined_to), std::move(object)});
  }
};

// Symlinked folders are not entered (no loops, nothing outside the folder); a symlink with an image name is
// collected whatever it points to, so that read_input can refuse it with the reason instead of the walk
// dropping it silently.
// Files with other names are counted as not images (folders, FIFOs and sockets are not files to count).
void add_folder(const fs::path& folder, Walk& out) {
  std::vector<fs::path> found;
  std::vector<fs::path> others;
  std::error_code error;
  fs::recursive_directory_iterator walk(folder, fs::directory_options::skip_permission_denied, error);
  if (error) throw UsageError("cannot read folder " + folder.string() + ": " + error.message());
  for (const auto& entry : walk) {
    std::error_code status_error;
    if (!entry.is_symlink(status_error) && !entry.is_regular_file(status_error)) continue;
    (has_image_extension(entry.path()) ? found : others).push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  std::sort(others.begin(), others.end());
  for (auto& path : found) out.add(std::move(path), folder, std::nullopt);
  for (auto& path : others) out.not_images.push_back(std::move(path));
}

void add_argument(const std::string& argument, Walk& out, int depth) {
  if (argument.size() > 1 && argument.front() == '@') {
    if (depth > 4) throw UsageError("list files nest too deeply at " + argument);
    const fs::path list = argument.substr(1);
    std::ifstream in(list);
    if (!in) throw UsageError("cannot read the list file " + list.string() + ": " + std::strerror(errno));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line.front() == '#') continue;
      const fs::path named = line;
      add_argument(named.is_absolute() || is_s3_uri(line) ? line : (list.parent_path() / named).string(), out,
                   depth + 1);
    }
    return;
  }
  if (is_s3_uri(argument)) {
    if (out.objects == nullptr) throw UsageError(argument + ": this command takes no s3:// inputs");
    ObjectArgument expanded = expand_object_argument(argument, *out.objects);
    for (auto& [uri, object] : expanded.images) out.add(uri, {}, std::move(object));
    for (auto& uri : expanded.not_images) out.not_images.push_back(uri);
    return;
  }
  std::error_code error;
  if (fs::is_directory(argument, error)) {
    add_folder(argument, out);
  } else {
    out.add(argument, {}, std::nullopt);  // a missing file gets its own line when it is read
  }
}

}  // namespace

bool has_image_extension(const fs::path& path) {
  static const std::set<std::string> kExtensions = {".jpg",  ".jpeg", ".png",  ".bmp",  ".webp", ".tif",
                                                    ".tiff", ".gif",  ".heic", ".heif", ".avif"};
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return kExtensions.count(extension) > 0;
}

std::string input_id(std::size_t index) {
  std::string id = std::to_string(index);
  return id.size() >= 6 ? id : std::string(6 - id.size(), '0') + id;
}

std::vector<fs::path> stream_inputs(const std::vector<std::string>& arguments, const S3Client* objects,
                                    const std::function<void(JobInput&&)>& on_input) {
  Walk walk;
  walk.objects = objects;
  walk.on_input = on_input;
  for (const auto& argument : arguments) add_argument(argument, walk, 0);
  return std::move(walk.not_images);
}

CollectedInputs gather_inputs(const std::vector<std::string>& arguments, const S3Client* objects) {
  CollectedInputs out;
  out.not_images =
      stream_inputs(arguments, objects, [&](JobInput&& input) { out.images.push_back(std::move(input)); });
  return out;
}

std::vector<JobInput> collect_inputs(const std::vector<std::string>& arguments) {
  return gather_inputs(arguments).images;
}

std::string describe_not_images(const std::vector<fs::path>& not_images, std::size_t max_names) {
  if (not_images.empty()) return "";
  std::string out = "skipped " + std::to_string(not_images.size()) +
                    (not_images.size() == 1 ? " file that is not an image by its extension: "
                                            : " files that are not images by their extension: ");
  const std::size_t named = std::min(not_images.size(), max_names);
  for (std::size_t i = 0; i < named; ++i) out += (i > 0 ? ", " : "") + not_images[i].string();
  if (named < not_images.size()) out += " and " + std::to_string(not_images.size() - named) + " more";
  return out;
}

ReadOutcome read_input(const JobInput& input, std::size_t max_file_bytes) {
  auto fail = [&](const std::string& reason) {
    return ReadOutcome{std::nullopt, ImageResult{input.image_id, "", 0.0, reason}};
  };
  // What is opened: the path as named, or for a file found in a folder the file it resolves to, checked to
  // lie inside that folder, opened without following a last-moment symlink (O_NOFOLLOW). Resolving here,
  // when the file is read, rather than when the folder was walked, leaves a swapped link only the moment
  // between canonical() and open() on a folder component (openat2 RESOLVE_BENEATH would close that too).
  fs::path file = input.path;
  std::error_code error;
  if (!input.confined_to.empty()) {
    const fs::path resolved = fs::canonical(input.path, error);
    if (error == std::errc::too_many_symbolic_link_levels)
      return fail("symlink loop (too many levels of symbolic links)");
    if (error) {
      std::error_code link_error;
      if (fs::is_symlink(fs::symlink_status(input.path, link_error)))
        return fail("broken symlink (its target does not exist)");
      return fail("cannot read file: " + error.message());
    }
    const fs::path root = fs::canonical(input.confined_to, error);
    if (error) return fail("cannot read the input folder: " + error.message());
    const auto [root_end, unused] = std::mismatch(root.begin(), root.end(), resolved.begin(), resolved.end());
    if (root_end != root.end()) return fail("symlink points outside the input folder");
    file = resolved;
  }
  // O_NONBLOCK: a FIFO given as an image must not hang the job in open(); regular files ignore it.
  FileDescriptor fd(
      ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (input.confined_to.empty() ? 0 : O_NOFOLLOW)));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      std::error_code link_error;
      if (fs::is_symlink(fs::symlink_status(input.path, link_error)))
        return fail("broken symlink (its target does not exist)");
      return fail("cannot read file: no such file");
    }
    if (errno == ELOOP) return fail("symlink loop (too many levels of symbolic links)");
    return fail(std::string("cannot read file: ") + std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return fail(std::string("cannot read file: ") + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return fail("not a regular file");
  const auto size = static_cast<std::size_t>(info.st_size);
  if (size > max_file_bytes) {
    return fail("file of " + std::to_string(size) + " bytes is over the limit of " +
                std::to_string(max_file_bytes) + " bytes");
  }
  EncodedImage image{input.image_id, std::vector<std::uint8_t>(size)};
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::read(fd.get(), image.bytes.data() + done, size - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return fail(std::string("cannot read file: ") + std::strerror(errno));
    if (got == 0) return fail("cannot read file: it changed while being read");
    done += static_cast<std::size_t>(got);
  }
  return {std::move(image), std::nullopt};
}

}  // namespace imgpipe
