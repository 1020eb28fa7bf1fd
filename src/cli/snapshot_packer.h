// Packs a code folder (honouring .dlabignore) into a deterministic tar.gz: sorted entries, zero
// times and owners, modes and symlinks kept, no gzip timestamp, so a folder always has one SHA-256.
// Free functions over the filesystem; thread-safe for different output files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace dlab {

// What a snapshot of a folder will hold, found by walking it once.
struct CodeFolder {
  std::filesystem::path root;
  std::vector<std::string> entries;  // relative '/'-separated paths, sorted; directories included
  int64_t content_bytes = 0;         // total size of the regular files
};

// Walks `root` (without following symlinks), leaving out what .dlabignore excludes. Sockets,
// fifos and devices are skipped. NotFound when root is missing, InvalidArgument when it is not a
// directory, Internal on a filesystem error.
absl::StatusOr<CodeFolder> ScanCodeFolder(const std::filesystem::path& root);

struct PackOptions {
  // Called as file content is written: bytes of regular files packed so far, and the total.
  std::function<void(int64_t done, int64_t total)> on_progress;
};

struct PackedSnapshot {
  std::string id;  // "sha256:<hex>" of the archive bytes
  int64_t archive_bytes = 0;
};

// Writes the archive of `folder` to `archive_path` (created or truncated) and returns its id.
// Internal when a file cannot be read or the archive cannot be written; FailedPrecondition when a
// file changes size while it is packed.
absl::StatusOr<PackedSnapshot> PackSnapshot(const CodeFolder& folder,
                                            const std::filesystem::path& archive_path,
                                            const PackOptions& options = {});

}  // namespace dlab
