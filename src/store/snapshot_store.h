// SnapshotStore: code snapshots (gzip-compressed tar archives) stored on disk under their
// SHA-256, so the same code uploaded twice is kept once. Every archive is checked before it is
// kept: no absolute paths, no "..", no links that leave the snapshot, no device files.
// Thread-safe (files are written under a temporary name and renamed).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlab {

struct SnapshotInfo {
  std::string id;    // "sha256:<64 hex>"
  int64_t size = 0;  // bytes of the archive
  bool created = false;
};

struct SnapshotLimits {
  int64_t max_unpacked_bytes = 8LL << 30;
  int64_t max_entries = 1'000'000;
};

// InvalidArgument naming the first unsafe or unreadable entry.
absl::Status CheckArchive(absl::string_view tar_gz, const SnapshotLimits& limits = {});

class SnapshotStore final {
 public:
  // dir: where archives are kept (created if missing).
  explicit SnapshotStore(std::string dir, SnapshotLimits limits = {});
  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

  // Checks and keeps an archive. InvalidArgument if unsafe; Internal on disk errors.
  absl::StatusOr<SnapshotInfo> Put(absl::string_view tar_gz);
  // NotFound for unknown or malformed ids.
  absl::StatusOr<SnapshotInfo> Stat(const std::string& id) const;
  // The archive's bytes. NotFound for unknown or malformed ids.
  absl::StatusOr<std::string> Read(const std::string& id) const;
  // Extracts snapshot id into dest (an existing directory), refusing anything unsafe again.
  absl::Status Extract(const std::string& id, const std::string& dest) const;

 private:
  std::string PathOf(const std::string& id) const;
  std::string dir_;
  SnapshotLimits limits_;
};

}  // namespace dlab
