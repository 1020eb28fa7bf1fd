// Small file helpers: whole-file reads and crash-safe writes (temporary file, fsync, rename,
// fsync of the directory). Thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlab {

// Whether anything exists at path (access(F_OK)).
bool FileExists(const std::string& path);

// NotFound when the file does not exist; Internal on other errors.
absl::StatusOr<std::string> ReadFile(const std::string& path);
struct WriteOptions {
  // fsync the file and its directory: after OK, path holds data even if the machine crashes.
  // Without it, readers still never see a partial file.
  bool sync = true;
  int mode = 0644;  // of a new file (before the umask)
};

// Writes through a temporary file renamed over path. Internal on errors, naming the path.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view data,
                                 WriteOptions options = {});

}  // namespace dlab
