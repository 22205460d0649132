// Whole-file writes that a crash cannot leave half done (job state, job record).
#pragma once

#include <filesystem>
#include <string>

namespace imgpipe {

// Write to a temporary file, fsync, rename over `file`: afterwards the file holds either its previous
// content or `text`. Throws std::runtime_error naming the file.
void write_file_atomically(const std::filesystem::path& file, const std::string& text);

}  // namespace imgpipe
