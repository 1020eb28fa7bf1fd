// Small file helpers: whole-file reads and crash-safe writes (temporary file, fsync, rename,
// fsync of the directory). Thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlab {

// NotFound when the file does not exist; Internal on other errors.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// After it returns OK, path holds data even if the machine crashes; a reader never sees a
// partial file. Internal on errors, naming the path.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view data);

}  // namespace dlab
