#include "store/snapshot_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/sha256.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

ArchivePtr OpenReader(absl::string_view data) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK)
    return {nullptr, archive_read_free};
  return a;
}

// Normalizes "./a/b" to "a/b" and checks the path stays inside the root. Returns the number of
// path components, or -1 when the path is absolute or climbs out.
int SafeDepth(std::string path, std::string* normalized) {
  if (path.empty() || path[0] == '/') return -1;
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") return -1;
    parts.emplace_back(part);
  }
  *normalized = absl::StrJoin(parts, "/");
  return static_cast<int>(parts.size());
}

// A symlink at entry path (depth components) pointing at target stays inside the root.
bool SymlinkStaysInside(int entry_depth, const std::string& target) {
  if (target.empty() || target[0] == '/') return false;
  int depth = entry_depth - 1;  // the link's directory
  for (absl::string_view part : absl::StrSplit(target, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    depth += part == ".." ? -1 : 1;
    if (depth < 0) return false;
  }
  return true;
}

absl::Status Unsafe(const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("snapshot: entry '", path, "' ", why));
}

absl::Status CheckEntry(struct archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  std::string path = raw ? raw : "";
  std::string normalized;
  int depth = SafeDepth(path, &normalized);
  if (depth < 0) return Unsafe(path, "has an absolute path or '..' (it would escape the snapshot)");
  if (const char* hl = archive_entry_hardlink(e)) {
    std::string ignored;
    if (SafeDepth(hl, &ignored) < 0)
      return Unsafe(path, absl::StrCat("is a hard link to '", hl, "' outside the snapshot"));
    return absl::OkStatus();
  }
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
    case AE_IFDIR:
      return absl::OkStatus();
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(e);
      if (!SymlinkStaysInside(depth, target ? target : "")) {
        return Unsafe(path, absl::StrCat("is a symbolic link to '", target ? target : "",
                                         "' outside the snapshot"));
      }
      return absl::OkStatus();
    }
    default:
      return Unsafe(path, "is not a regular file, directory or symbolic link");
  }
}

// Each link was checked on its own when the archive was uploaded; a chain of links (a -> b/..,
// b -> ../..) can still lead out, which only the unpacked tree shows.
absl::Status CheckLinksStayInside(const std::string& dest) {
  std::error_code ec;
  fs::path root = fs::canonical(dest, ec);
  if (ec) return absl::InternalError(absl::StrCat("snapshot: ", dest, ": ", ec.message()));
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_symlink()) continue;
    fs::path target = fs::weakly_canonical(it->path(), ec);
    if (ec) break;
    auto [r, t] = std::mismatch(root.begin(), root.end(), target.begin(), target.end());
    if (r != root.end()) {
      return absl::InvalidArgumentError(absl::StrCat("snapshot: symbolic link '",
                                                     it->path().lexically_relative(root).string(),
                                                     "' leads outside the snapshot"));
    }
  }
  if (ec)
    return absl::InternalError(absl::StrCat("snapshot: cannot check ", dest, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckArchive(absl::string_view tar_gz, const SnapshotLimits& limits) {
  ArchivePtr a = OpenReader(tar_gz);
  if (!a) return absl::InvalidArgumentError("snapshot: not a readable archive");
  struct archive_entry* e;
  int64_t entries = 0;
  int64_t unpacked = 0;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    if (auto s = CheckEntry(e); !s.ok()) return s;
    if (++entries > limits.max_entries) {
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot: more than ", limits.max_entries, " entries"));
    }
    // Read the data rather than trust the header's size: it is what extraction would write.
    const void* buf;
    size_t len;
    int64_t offset;
    int drc;
    while ((drc = archive_read_data_block(a.get(), &buf, &len, &offset)) == ARCHIVE_OK) {
      unpacked += static_cast<int64_t>(len);
      if (unpacked > limits.max_unpacked_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("snapshot: unpacks to more than ", limits.max_unpacked_bytes, " bytes"));
      }
    }
    if (drc != ARCHIVE_EOF) {
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot: corrupt data: ", archive_error_string(a.get())));
    }
  }
  if (rc != ARCHIVE_EOF) {
    const char* err = archive_error_string(a.get());
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot: not a valid gzip tar archive: ", err ? err : "unknown error"));
  }
  if (entries == 0)
    return absl::InvalidArgumentError("snapshot: not a valid gzip tar archive: no entries");
  return absl::OkStatus();
}

SnapshotStore::SnapshotStore(std::string dir, SnapshotLimits limits)
    : dir_(std::move(dir)), limits_(limits) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
}

std::string SnapshotStore::PathOf(const std::string& id) const {
  if (id.size() != 71 || !id.starts_with("sha256:") ||
      id.find_first_not_of("0123456789abcdef", 7) != std::string::npos) {
    return "";
  }
  return absl::StrCat(dir_, "/", id.substr(7), ".tar.gz");
}

absl::StatusOr<SnapshotInfo> SnapshotStore::Put(absl::string_view tar_gz) {
  if (auto s = CheckArchive(tar_gz, limits_); !s.ok()) return s;
  SnapshotInfo info{.id = SnapshotIdOf(tar_gz), .size = static_cast<int64_t>(tar_gz.size())};
  std::string path = PathOf(info.id);
  if (fs::exists(path)) return info;
  if (auto s = WriteFileAtomically(path, tar_gz); !s.ok()) return s;
  info.created = true;
  return info;
}

absl::StatusOr<SnapshotInfo> SnapshotStore::Stat(const std::string& id) const {
  std::string path = PathOf(id);
  std::error_code ec;
  auto size = path.empty() ? 0 : fs::file_size(path, ec);
  if (path.empty() || ec) return absl::NotFoundError(absl::StrCat("snapshot ", id, " not found"));
  return SnapshotInfo{.id = id, .size = static_cast<int64_t>(size)};
}

absl::StatusOr<std::string> SnapshotStore::Read(const std::string& id) const {
  auto info = Stat(id);
  if (!info.ok()) return info.status();
  return ReadFile(PathOf(id));
}

absl::Status SnapshotStore::Extract(const std::string& id, const std::string& dest) const {
  auto data = Read(id);
  if (!data.ok()) return data.status();
  if (auto s = CheckArchive(*data, limits_); !s.ok()) return s;
  ArchivePtr in = OpenReader(*data);
  ArchivePtr out(archive_write_disk_new(), archive_write_free);
  // Entry paths were checked and are rewritten below as dest + normalized relative path, so
  // absolute paths are expected here; ".." and writing through symlinks stay forbidden.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME);
  struct archive_entry* e;
  while (archive_read_next_header(in.get(), &e) == ARCHIVE_OK) {
    std::string normalized;
    SafeDepth(archive_entry_pathname(e), &normalized);
    archive_entry_set_pathname(e, absl::StrCat(dest, "/", normalized).c_str());
    if (const char* hl = archive_entry_hardlink(e)) {
      std::string target;
      SafeDepth(hl, &target);
      archive_entry_set_hardlink(e, absl::StrCat(dest, "/", target).c_str());
    }
    if (archive_write_header(out.get(), e) != ARCHIVE_OK) {
      return absl::InternalError(absl::StrCat("snapshot: cannot extract '", normalized,
                                              "': ", archive_error_string(out.get())));
    }
    const void* buf;
    size_t len;
    int64_t offset;
    while (archive_read_data_block(in.get(), &buf, &len, &offset) == ARCHIVE_OK) {
      if (archive_write_data_block(out.get(), buf, len, offset) != ARCHIVE_OK) {
        return absl::InternalError(absl::StrCat("snapshot: cannot write '", normalized,
                                                "': ", archive_error_string(out.get())));
      }
    }
  }
  if (archive_write_finish_entry(out.get()) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat("snapshot: ", archive_error_string(out.get())));
  }
  return CheckLinksStayInside(dest);
}

}  // namespace dlab
