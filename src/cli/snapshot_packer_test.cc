#include "cli/snapshot_packer.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace dlab {
namespace {

namespace fs = std::filesystem;

struct ArchivedEntry {
  char type = '?';  // 'f' file, 'd' directory, 'l' symlink
  int perm = 0;
  std::string content;  // file content, or symlink target
  int64_t mtime = -1;
  int64_t uid = -1;
  int64_t gid = -1;
  std::string uname;
  std::string gname;
};

// Reads an archive back, in stored order.
std::vector<std::pair<std::string, ArchivedEntry>> ReadArchive(const fs::path& path) {
  std::vector<std::pair<std::string, ArchivedEntry>> entries;
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 10240), ARCHIVE_OK);
  struct archive_entry* entry;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    ArchivedEntry e;
    mode_t type = archive_entry_filetype(entry);
    e.type = type == AE_IFREG ? 'f' : type == AE_IFDIR ? 'd' : type == AE_IFLNK ? 'l' : '?';
    e.perm = archive_entry_perm(entry);
    e.mtime = archive_entry_mtime(entry);
    e.uid = archive_entry_uid(entry);
    e.gid = archive_entry_gid(entry);
    e.uname = archive_entry_uname(entry) ? archive_entry_uname(entry) : "";
    e.gname = archive_entry_gname(entry) ? archive_entry_gname(entry) : "";
    if (e.type == 'l') e.content = archive_entry_symlink(entry);
    char buffer[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a, buffer, sizeof buffer)) > 0) e.content.append(buffer, n);
    std::string name = archive_entry_pathname(entry);
    if (!name.empty() && name.back() == '/') name.pop_back();
    entries.emplace_back(name, e);
  }
  archive_read_free(a);
  return entries;
}

class SnapshotPackerTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("dlab-packer-test-" + std::to_string(::getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void Write(const fs::path& path, const std::string& content) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  // A small project: code, an executable script, a symlink, and things .dlabignore leaves out.
  // `reverse` creates the files in the opposite order, which changes directory listing order.
  void MakeProject(const fs::path& root, bool reverse) {
    std::vector<std::pair<std::string, std::string>> files = {
        {".dlabignore", "# not code\ndata/\n*.log\n!keep.log\n/checkpoints\n"},
        {"train.py", "print('train')\n"},
        {"run.sh", "#!/bin/sh\npython train.py\n"},
        {"pkg/__init__.py", ""},
        {"pkg/model.py", "class Model: pass\n"},
        {"data/big.bin", std::string(1000, 'x')},
        {"pkg/data/also_ignored.csv", "a,b\n"},
        {"debug.log", "noise\n"},
        {"keep.log", "kept\n"},
        {"checkpoints/step1.pt", "weights"},
        {"pkg/checkpoints/note.txt", "not anchored, so kept\n"},
        {".git/HEAD", "ref: refs/heads/main\n"},
    };
    if (reverse) std::reverse(files.begin(), files.end());
    for (const auto& [path, content] : files) Write(root / path, content);
    fs::permissions(root / "run.sh", fs::perms(0755));
    fs::permissions(root / "train.py", fs::perms(0644));
    fs::create_symlink("train.py", root / "latest.py");
  }

  PackedSnapshot Pack(const fs::path& root, const std::string& archive_name) {
    absl::StatusOr<CodeFolder> folder = ScanCodeFolder(root);
    EXPECT_TRUE(folder.ok()) << folder.status();
    absl::StatusOr<PackedSnapshot> packed = PackSnapshot(*folder, dir_ / archive_name);
    EXPECT_TRUE(packed.ok()) << packed.status();
    return *packed;
  }

  fs::path dir_;
};

TEST_F(SnapshotPackerTest, SameFolderGivesTheSameDigest) {
  MakeProject(dir_ / "a", /*reverse=*/false);
  PackedSnapshot first = Pack(dir_ / "a", "first.tar.gz");
  // Times and listing order must not matter: touch a file and pack a copy made in reverse order.
  fs::last_write_time(dir_ / "a" / "train.py",
                      fs::file_time_type::clock::now() - std::chrono::hours(5));
  PackedSnapshot second = Pack(dir_ / "a", "second.tar.gz");
  MakeProject(dir_ / "b", /*reverse=*/true);
  PackedSnapshot copy = Pack(dir_ / "b", "copy.tar.gz");

  EXPECT_EQ(first.id.rfind("sha256:", 0), 0u);
  EXPECT_EQ(first.id.size(), 7u + 64u);
  EXPECT_EQ(first.id, second.id);
  EXPECT_EQ(first.id, copy.id);
  EXPECT_EQ(first.archive_bytes, static_cast<int64_t>(fs::file_size(dir_ / "first.tar.gz")));

  Write(dir_ / "a" / "train.py", "print('changed')\n");
  EXPECT_NE(Pack(dir_ / "a", "changed.tar.gz").id, first.id);
}

TEST_F(SnapshotPackerTest, ArchiveHoldsTheCodeAndNotTheIgnoredFiles) {
  MakeProject(dir_ / "p", /*reverse=*/false);
  Pack(dir_ / "p", "out.tar.gz");
  std::vector<std::pair<std::string, ArchivedEntry>> entries = ReadArchive(dir_ / "out.tar.gz");

  std::vector<std::string> names;
  for (const auto& [name, entry] : entries) names.push_back(name);
  EXPECT_EQ(names,
            (std::vector<std::string>{
                ".dlabignore", "keep.log", "latest.py", "pkg", "pkg/__init__.py", "pkg/checkpoints",
                "pkg/checkpoints/note.txt", "pkg/model.py", "run.sh", "train.py"}));

  std::map<std::string, ArchivedEntry> by_name(entries.begin(), entries.end());
  EXPECT_EQ(by_name["train.py"].type, 'f');
  EXPECT_EQ(by_name["train.py"].content, "print('train')\n");
  EXPECT_EQ(by_name["train.py"].perm, 0644);
  EXPECT_EQ(by_name["run.sh"].perm, 0755);
  EXPECT_EQ(by_name["latest.py"].type, 'l');
  EXPECT_EQ(by_name["latest.py"].content, "train.py");
  EXPECT_EQ(by_name["pkg"].type, 'd');
  for (const auto& [name, entry] : entries) {
    EXPECT_EQ(entry.mtime, 0) << name;
    EXPECT_EQ(entry.uid, 0) << name;
    EXPECT_EQ(entry.gid, 0) << name;
    EXPECT_EQ(entry.uname, "") << name;
    EXPECT_EQ(entry.gname, "") << name;
  }
}

TEST_F(SnapshotPackerTest, GzipHeaderHasNoTimestampOrName) {
  MakeProject(dir_ / "p", /*reverse=*/false);
  Pack(dir_ / "p", "out.tar.gz");
  std::ifstream in(dir_ / "out.tar.gz", std::ios::binary);
  unsigned char header[10] = {};
  in.read(reinterpret_cast<char*>(header), sizeof header);
  EXPECT_EQ(header[0], 0x1f);
  EXPECT_EQ(header[1], 0x8b);
  EXPECT_EQ(header[3] & 0x08, 0) << "FNAME flag set";
  EXPECT_EQ(header[4] | header[5] | header[6] | header[7], 0) << "MTIME set";
}

TEST_F(SnapshotPackerTest, ScanCountsContentBytesForTheProgressBar) {
  Write(dir_ / "p" / "a.bin", std::string(3000, 'a'));
  Write(dir_ / "p" / "ignored.bin", std::string(5000, 'b'));
  Write(dir_ / "p" / ".dlabignore", "ignored.bin\n");
  absl::StatusOr<CodeFolder> folder = ScanCodeFolder(dir_ / "p");
  ASSERT_TRUE(folder.ok()) << folder.status();
  EXPECT_EQ(folder->content_bytes, 3000 + 12);

  int64_t last_done = 0;
  int64_t last_total = 0;
  absl::StatusOr<PackedSnapshot> packed = PackSnapshot(
      *folder, dir_ / "out.tar.gz", PackOptions{.on_progress = [&](int64_t done, int64_t total) {
        last_done = done;
        last_total = total;
      }});
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ(last_done, 3012);
  EXPECT_EQ(last_total, 3012);
}

TEST_F(SnapshotPackerTest, MissingFolderIsNotFound) {
  absl::StatusOr<CodeFolder> folder = ScanCodeFolder(dir_ / "nope");
  EXPECT_EQ(folder.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dlab
