// Placing photos by label. Hard links cost no space and keep the original untouched (only its link count
// and ctime change); where a link cannot be made (another file system, or one without hard links) a copy
// is made under a temporary name first, so an interrupted sort never leaves a half-written photo.
#include "imgpipe/report/sort_into.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

#include "imgpipe/models/model_store.hpp"  // sha256_hex

namespace imgpipe {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxFolderNameBytes = 200;

std::string system_error(const std::string& what, int error) {
  return what + ": " + std::strerror(error);
}

bool same_bytes(const fs::path& a, const fs::path& b) {
  std::ifstream first(a, std::ios::binary);
  std::ifstream second(b, std::ios::binary);
  if (!first || !second) return false;
  std::vector<char> block_a(1 << 16);
  std::vector<char> block_b(1 << 16);
  while (first && second) {
    first.read(block_a.data(), static_cast<std::streamsize>(block_a.size()));
    second.read(block_b.data(), static_cast<std::streamsize>(block_b.size()));
    if (first.gcount() != second.gcount()) return false;
    if (std::memcmp(block_a.data(), block_b.data(), static_cast<std::size_t>(first.gcount())) != 0)
      return false;
  }
  return first.eof() && second.eof();
}

// The photo is already at `placed`: the same file (a link from an earlier sort), or a copy of it.
bool holds_the_photo(const fs::path& placed, const fs::path& source, const struct stat& source_stat) {
  struct stat placed_stat {};
  if (::stat(placed.c_str(), &placed_stat) != 0) return false;
  if (placed_stat.st_dev == source_stat.st_dev && placed_stat.st_ino == source_stat.st_ino) return true;
  return S_ISREG(placed_stat.st_mode) && placed_stat.st_size == source_stat.st_size &&
         same_bytes(placed, source);
}

bool name_taken(const fs::path& path) {
  std::error_code error;
  return fs::symlink_status(path, error).type() != fs::file_type::not_found;
}

fs::path clash_name(const fs::path& folder, const fs::path& source) {
  const std::string absolute = fs::absolute(source).lexically_normal().string();
  const std::string hash = sha256_hex(absolute.data(), absolute.size()).substr(0, 8);
  return folder / (source.stem().string() + "~" + hash + source.extension().string());
}

// Errors after which a copy can still succeed: the link itself is impossible here, not the write.
bool copy_instead(int error) {
  return error == EXDEV || error == EPERM || error == EMLINK || error == ENOTSUP || error == EOPNOTSUPP;
}

void copy_into_place(const fs::path& source, const fs::path& target) {
  const fs::path partial = target.parent_path() / ("." + target.filename().string() + ".imgpipe-partial-" +
                                                   std::to_string(::getpid()));
  try {
    fs::copy_file(source, partial, fs::copy_options::overwrite_existing);
    fs::last_write_time(partial, fs::last_write_time(source));  // a photo's date is often its file time
    // link + remove rather than rename: never replaces a file that appeared at `target` meanwhile.
    if (::link(partial.c_str(), target.c_str()) != 0)
      throw std::runtime_error(system_error("cannot create " + target.string(), errno));
  } catch (...) {
    std::error_code ignored;
    fs::remove(partial, ignored);
    throw;
  }
  fs::remove(partial);
}

enum class Placed { linked, copied, already };

Placed place(const fs::path& source, const std::string& label, const fs::path& dir,
             std::set<fs::path>& folders) {
  struct stat source_stat {};
  if (::stat(source.c_str(), &source_stat) != 0)
    throw std::runtime_error(system_error("cannot read " + source.string(), errno));
  if (!S_ISREG(source_stat.st_mode)) throw std::runtime_error(source.string() + " is not a regular file");

  const fs::path folder = dir / label_folder_name(label);
  fs::create_directories(folder);
  const fs::path own_name = folder / source.filename();
  const fs::path other_name = clash_name(folder, source);
  if (holds_the_photo(own_name, source, source_stat) || holds_the_photo(other_name, source, source_stat)) {
    folders.insert(folder);
    return Placed::already;
  }
  fs::path target;
  if (!name_taken(own_name)) {
    target = own_name;
  } else if (!name_taken(other_name)) {
    target = other_name;
  } else {
    throw std::runtime_error("both " + own_name.string() + " and " + other_name.string() +
                             " are taken by other files");
  }
  // AT_SYMLINK_FOLLOW: a photo named through a symlink is placed as the photo, not as the symlink.
  if (::linkat(AT_FDCWD, source.c_str(), AT_FDCWD, target.c_str(), AT_SYMLINK_FOLLOW) == 0) {
    folders.insert(folder);
    return Placed::linked;
  }
  const int error = errno;
  if (!copy_instead(error))
    throw std::runtime_error(
        system_error("cannot link " + source.string() + " as " + target.string(), error));
  copy_into_place(source, target);
  folders.insert(folder);
  return Placed::copied;
}

}  // namespace

std::string label_folder_name(const std::string& label) {
  std::string name = label;
  for (char& c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '/' || byte < 0x20 || byte == 0x7f) c = '_';
  }
  if (name.empty()) return "_";
  if (name.front() == '.') name.front() = '_';
  if (name.size() > kMaxFolderNameBytes) {
    // Never cut inside a UTF-8 sequence: back up over continuation bytes (10xxxxxx).
    std::size_t cut = kMaxFolderNameBytes;
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
    name.resize(cut);
  }
  return name;
}

SortSummary sort_into_folders(const std::vector<PhotoToPlace>& photos, const fs::path& dir) {
  try {
    fs::create_directories(dir);
  } catch (const fs::filesystem_error& error) {
    throw std::runtime_error("cannot create " + dir.string() + ": " + error.code().message());
  }
  SortSummary summary;
  std::set<fs::path> folders;
  for (const auto& photo : photos) {
    if (!photo.label) {
      ++summary.failed_images;
      continue;
    }
    try {
      switch (place(photo.source, *photo.label, dir, folders)) {
        case Placed::linked:
          ++summary.linked;
          break;
        case Placed::copied:
          ++summary.copied;
          break;
        case Placed::already:
          ++summary.already_placed;
          break;
      }
    } catch (const fs::filesystem_error& error) {
      summary.problems.push_back({photo.source, error.what()});
    } catch (const std::runtime_error& error) {
      summary.problems.push_back({photo.source, error.what()});
    }
  }
  summary.folders = folders.size();
  return summary;
}

std::string describe(const SortSummary& summary, const fs::path& dir) {
  const auto count = [](std::size_t n, const std::string& one, const std::string& many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  };
  std::string text = "placed " + count(summary.placed(), "photo", "photos") + " into " +
                     count(summary.folders, "folder", "folders") + " under " + dir.string() + " (" +
                     std::to_string(summary.linked) + " linked, " + std::to_string(summary.copied) +
                     " copied, " + std::to_string(summary.already_placed) + " already there); " +
                     count(summary.failed_images, "failed image", "failed images") + " not placed";
  if (!summary.problems.empty())
    text += "; " + count(summary.problems.size(), "photo", "photos") + " could not be placed";
  return text;
}

}  // namespace imgpipe
