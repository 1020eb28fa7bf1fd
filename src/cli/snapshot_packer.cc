#include "cli/snapshot_packer.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "cli/dlabignore.h"
#include "common/sha256.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkBytes = 64 * 1024;

absl::Status FilesystemError(absl::string_view what, const fs::path& path,
                             const std::error_code& ec) {
  return absl::InternalError(absl::StrCat(what, " ", path.string(), ": ", ec.message()));
}

absl::StatusOr<IgnoreRules> ReadIgnoreRules(const fs::path& root) {
  fs::path file = root / ".dlabignore";
  std::error_code ec;
  if (!fs::exists(file, ec)) return IgnoreRules::Parse("");
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  return IgnoreRules::Parse(text.str());
}

absl::Status Walk(const fs::path& root, const std::string& prefix, const IgnoreRules& rules,
                  CodeFolder* folder) {
  std::error_code ec;
  fs::directory_iterator it(prefix.empty() ? root : root / prefix, ec);
  if (ec) return FilesystemError("cannot list", root / prefix, ec);
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::string rel =
        absl::StrCat(prefix, prefix.empty() ? "" : "/", it->path().filename().string());
    fs::file_status status = it->symlink_status(ec);
    if (ec) return FilesystemError("cannot stat", it->path(), ec);
    bool is_dir = fs::is_directory(status);
    if (rules.IsIgnored(rel, is_dir ? EntryKind::kDirectory : EntryKind::kFile)) continue;
    if (is_dir) {
      folder->entries.push_back(rel);
      if (auto s = Walk(root, rel, rules, folder); !s.ok()) return s;
    } else if (fs::is_regular_file(status)) {
      folder->entries.push_back(rel);
      uintmax_t size = it->file_size(ec);
      if (ec) return FilesystemError("cannot stat", it->path(), ec);
      folder->content_bytes += static_cast<int64_t>(size);
    } else if (fs::is_symlink(status)) {
      folder->entries.push_back(rel);
    }
  }
  if (ec) return FilesystemError("cannot list", root / prefix, ec);
  return absl::OkStatus();
}

// Where libarchive's output goes: the archive file, hashed on the way.
struct Sink {
  FILE* file = nullptr;
  Sha256* sha256 = nullptr;
  int64_t bytes = 0;
  bool failed = false;
};

la_ssize_t WriteToSink(struct archive*, void* opaque, const void* buffer, size_t length) {
  auto* sink = static_cast<Sink*>(opaque);
  if (std::fwrite(buffer, 1, length, sink->file) != length) {
    sink->failed = true;
    return -1;
  }
  sink->sha256->Update(absl::string_view(static_cast<const char*>(buffer), length));
  sink->bytes += static_cast<int64_t>(length);
  return static_cast<la_ssize_t>(length);
}

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};

absl::Status ArchiveError(struct archive* a, absl::string_view what) {
  const char* detail = archive_error_string(a);
  return absl::InternalError(absl::StrCat(what, ": ", detail ? detail : "unknown archive error"));
}

class Packer {
 public:
  Packer(const CodeFolder& folder, const PackOptions& options)
      : folder_(folder), options_(options) {}

  absl::Status WriteEntry(struct archive* a, const std::string& rel) {
    fs::path path = folder_.root / rel;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      return FilesystemError("cannot stat", path, std::error_code(errno, std::generic_category()));
    }
    std::unique_ptr<struct archive_entry, EntryFree> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), rel.c_str());
    archive_entry_set_perm(entry.get(), st.st_mode & 07777);
    archive_entry_set_mtime(entry.get(), 0, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    std::unique_ptr<FILE, FileClose> in;
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(entry.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      fs::path target = fs::read_symlink(path, ec);
      if (ec) return FilesystemError("cannot read link", path, ec);
      archive_entry_set_filetype(entry.get(), AE_IFLNK);
      archive_entry_set_symlink(entry.get(), target.c_str());
    } else if (S_ISREG(st.st_mode)) {
      in.reset(std::fopen(path.c_str(), "rb"));
      if (!in) {
        return FilesystemError("cannot read", path,
                               std::error_code(errno, std::generic_category()));
      }
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_size(entry.get(), st.st_size);
    } else {
      return absl::OkStatus();  // vanished and came back as something we do not pack
    }
    if (archive_write_header(a, entry.get()) != ARCHIVE_OK) {
      return ArchiveError(a, absl::StrCat("cannot pack ", rel));
    }
    return in ? CopyContent(a, in.get(), rel, st.st_size) : absl::OkStatus();
  }

 private:
  absl::Status CopyContent(struct archive* a, FILE* in, const std::string& rel, int64_t size) {
    std::vector<char> buffer(kChunkBytes);
    int64_t left = size;
    while (left > 0) {
      size_t want = static_cast<size_t>(std::min<int64_t>(left, kChunkBytes));
      size_t got = std::fread(buffer.data(), 1, want, in);
      if (got == 0) break;
      if (archive_write_data(a, buffer.data(), got) < 0) {
        return ArchiveError(a, absl::StrCat("cannot pack ", rel));
      }
      left -= static_cast<int64_t>(got);
      done_ += static_cast<int64_t>(got);
      if (options_.on_progress) options_.on_progress(done_, folder_.content_bytes);
    }
    if (left != 0 || std::fgetc(in) != EOF) {
      return absl::FailedPreconditionError(
          absl::StrCat(rel, " changed while it was being packed; try again"));
    }
    return absl::OkStatus();
  }

  const CodeFolder& folder_;
  const PackOptions& options_;
  int64_t done_ = 0;
};

}  // namespace

absl::StatusOr<CodeFolder> ScanCodeFolder(const fs::path& root) {
  std::error_code ec;
  fs::file_status status = fs::status(root, ec);
  if (!fs::exists(status)) {
    return absl::NotFoundError(absl::StrCat("code folder ", root.string(), " does not exist"));
  }
  if (!fs::is_directory(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("code folder ", root.string(), " is not a directory"));
  }
  auto rules = ReadIgnoreRules(root);
  if (!rules.ok()) return rules.status();
  CodeFolder folder{.root = root};
  if (auto s = Walk(root, "", *rules, &folder); !s.ok()) return s;
  std::sort(folder.entries.begin(), folder.entries.end());
  return folder;
}

absl::StatusOr<PackedSnapshot> PackSnapshot(const CodeFolder& folder, const fs::path& archive_path,
                                            const PackOptions& options) {
  std::unique_ptr<FILE, FileClose> out(std::fopen(archive_path.c_str(), "wb"));
  if (!out) {
    return FilesystemError("cannot create", archive_path,
                           std::error_code(errno, std::generic_category()));
  }
  Sha256 sha256;
  Sink sink{.file = out.get(), .sha256 = &sha256};

  std::unique_ptr<struct archive, ArchiveFree> a(archive_write_new());
  struct archive* ar = a.get();
  if (archive_write_set_format_pax_restricted(ar) != ARCHIVE_OK ||
      archive_write_add_filter_gzip(ar) != ARCHIVE_OK ||
      archive_write_set_filter_option(ar, "gzip", "timestamp", nullptr) != ARCHIVE_OK) {
    return ArchiveError(ar, "cannot set up the archive");
  }
  if (archive_write_open(ar, &sink, nullptr, WriteToSink, nullptr) != ARCHIVE_OK) {
    return ArchiveError(ar, absl::StrCat("cannot write ", archive_path.string()));
  }
  Packer packer(folder, options);
  for (const std::string& rel : folder.entries) {
    if (auto s = packer.WriteEntry(ar, rel); !s.ok()) return s;
  }
  if (archive_write_close(ar) != ARCHIVE_OK || sink.failed) {
    return ArchiveError(ar, absl::StrCat("cannot write ", archive_path.string()));
  }
  if (std::fflush(out.get()) != 0) {
    return FilesystemError("cannot write", archive_path,
                           std::error_code(errno, std::generic_category()));
  }

  return PackedSnapshot{.id = sha256.SnapshotId(), .archive_bytes = sink.bytes};
}

}  // namespace dlab
