#include "imgpipe/job/input_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace imgpipe {
namespace {
using nlohmann::json;

// Paths are bytes on Linux, JSON strings are UTF-8: a path that is not valid UTF-8 (a Latin-1 file name)
// goes as {"hex": "..."} of its bytes, so it is read back byte for byte and still opens.
json path_to_json(const std::filesystem::path& path) {
  json text = path.string();
  try {
    (void)text.dump();  // throws for invalid UTF-8
    return text;
  } catch (const json::type_error&) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string hex;
    for (const unsigned char byte : path.string()) {
      hex += kDigits[byte >> 4];
      hex += kDigits[byte & 0xf];
    }
    return {{"hex", hex}};
  }
}

std::filesystem::path path_from_json(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  const std::string hex = value.at("hex").get<std::string>();
  if (hex.size() % 2 != 0) throw std::runtime_error("odd number of hex digits in a path");
  std::string bytes;
  for (std::size_t i = 0; i < hex.size(); i += 2)
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return bytes;
}

std::filesystem::path absolute_against(const std::filesystem::path& dir, const std::filesystem::path& path) {
  return path.empty() || path.is_absolute() || dir.empty() ? path : dir / path;
}

}  // namespace

InputFileWriter::InputFileWriter(std::filesystem::path file) : path_(std::move(file)) {
  std::error_code error;
  std::filesystem::create_directories(path_.parent_path(), error);
  out_.open(path_, std::ios::trunc | std::ios::binary);
  if (!out_)
    throw std::runtime_error("cannot write the inputs file " + path_.string() + ": " + std::strerror(errno));
}

void InputFileWriter::add(const JobInput& input) {
  json line = json::array({path_to_json(input.path)});
  if (!input.confined_to.empty() || input.object) line.push_back(path_to_json(input.confined_to));
  if (input.object) {
    // An object keeps the version it was listed as: a resumed job fetches that one or reports the change.
    line.push_back({{"bucket", input.object->bucket},
                    {"key", input.object->key},
                    {"etag", input.object->etag},
                    {"size", input.object->size}});
  }
  out_ << line.dump() << '\n';
  if (!out_)
    throw std::runtime_error("cannot write the inputs file " + path_.string() + ": " + std::strerror(errno));
  ++count_;
}

void InputFileWriter::close() {
  out_.flush();
  if (!out_)
    throw std::runtime_error("cannot write the inputs file " + path_.string() + ": " + std::strerror(errno));
  out_.close();
  // Synced before the job record that names it is written: a record never points at half a file.
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    const int synced = ::fdatasync(fd);
    ::close(fd);
    if (synced == 0) return;
  }
  throw std::runtime_error("cannot sync the inputs file " + path_.string() + ": " + std::strerror(errno));
}

InputFileReader::InputFileReader(const std::filesystem::path& file, std::filesystem::path working_dir)
    : path_(file), working_dir_(std::move(working_dir)), in_(file, std::ios::binary) {
  if (!in_)
    throw std::runtime_error("cannot read the inputs file " + path_.string() + ": " + std::strerror(errno));
}

std::optional<JobInput> InputFileReader::next() {
  std::string text;
  if (!std::getline(in_, text)) return std::nullopt;
  const std::size_t index = index_++;
  const json line = json::parse(text, nullptr, false);
  try {
    if (line.is_discarded() || !line.is_array() || line.empty()) throw std::runtime_error("not an input");
    JobInput input{input_id(index), path_from_json(line.at(0))};
    if (line.size() > 2) {
      const json& object = line.at(2);
      input.object = ObjectRef{object.at("bucket").get<std::string>(), object.at("key").get<std::string>(),
                               object.at("etag").get<std::string>(), object.at("size").get<std::uint64_t>()};
      return input;  // s3://bucket/key: no folder to resolve against
    }
    if (line.size() > 1) input.confined_to = absolute_against(working_dir_, path_from_json(line.at(1)));
    input.path = absolute_against(working_dir_, input.path);
    return input;
  } catch (const std::exception& error) {
    throw std::runtime_error("unreadable line " + std::to_string(index + 1) + " in the inputs file " +
                             path_.string() + ": " + error.what());
  }
}

TemporaryFile::~TemporaryFile() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove(path_, ignored);
}

}  // namespace imgpipe
