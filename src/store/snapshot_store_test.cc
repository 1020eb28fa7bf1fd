#include "store/snapshot_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/testing/temp_dir.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

struct Entry {
  std::string path;
  enum Kind { kFile, kDir, kSymlink, kHardlink, kFifo } kind = kFile;
  std::string data;  // file contents, or link target
};

// A gzip tar archive in memory, written with libarchive.
std::string TarGz(const std::vector<Entry>& entries) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* client, const void* buf, size_t len) -> la_ssize_t {
        static_cast<std::string*>(client)->append(static_cast<const char*>(buf), len);
        return static_cast<la_ssize_t>(len);
      },
      nullptr);
  for (const Entry& e : entries) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_perm(ae, 0644);
    switch (e.kind) {
      case Entry::kFile:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
        break;
      case Entry::kDir:
        archive_entry_set_filetype(ae, AE_IFDIR);
        archive_entry_set_perm(ae, 0755);
        break;
      case Entry::kSymlink:
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.data.c_str());
        break;
      case Entry::kHardlink:
        archive_entry_set_hardlink(ae, e.data.c_str());
        break;
      case Entry::kFifo:
        archive_entry_set_filetype(ae, AE_IFIFO);
        break;
    }
    archive_write_header(a, ae);
    if (e.kind == Entry::kFile) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = temp_.path();
    fs::create_directories(root_ / "dest");
  }
  testing::TempDir temp_;
  fs::path root_;
};

TEST_F(SnapshotStoreTest, RejectsEntriesThatEscape) {
  struct Case {
    std::vector<Entry> entries;
    std::string message_part;
  };
  std::vector<Case> cases = {
      {{{"../evil", Entry::kFile, "x"}}, "'../evil' has an absolute path or '..'"},
      {{{"/etc/cron.d/evil", Entry::kFile, "x"}}, "has an absolute path"},
      {{{"a/../../evil", Entry::kFile, "x"}}, "'a/../../evil'"},
      {{{"link", Entry::kSymlink, "/etc/passwd"}}, "symbolic link to '/etc/passwd' outside"},
      {{{"a/b/link", Entry::kSymlink, "../../../x"}}, "outside the snapshot"},
      {{{"hard", Entry::kHardlink, "../outside"}}, "hard link"},
      {{{"pipe", Entry::kFifo, ""}}, "not a regular file, directory or symbolic link"},
  };
  for (const Case& c : cases) {
    absl::Status s = CheckArchive(TarGz(c.entries));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message_part;
    EXPECT_NE(s.message().find(c.message_part), std::string::npos) << s.message();
  }
}

TEST_F(SnapshotStoreTest, AcceptsLinksThatStayInside) {
  EXPECT_TRUE(CheckArchive(TarGz({{"src", Entry::kDir},
                                  {"src/a.py", Entry::kFile, "print(1)"},
                                  {"src/link", Entry::kSymlink, "a.py"},
                                  {"top", Entry::kSymlink, "src/../src/a.py"},
                                  {"./dot/b", Entry::kFile, "b"}}))
                  .ok());
}

TEST_F(SnapshotStoreTest, RejectsGarbageAndBombs) {
  EXPECT_FALSE(CheckArchive("not an archive at all").ok());
  std::string big(1 << 20, 'z');
  absl::Status s = CheckArchive(TarGz({{"big", Entry::kFile, big}}), {.max_unpacked_bytes = 1000});
  EXPECT_NE(s.message().find("unpacks to more than 1000 bytes"), std::string::npos) << s;
}

TEST_F(SnapshotStoreTest, PutIsContentAddressedAndExtractRestoresFiles) {
  SnapshotStore store((root_ / "snapshots").string());
  std::string archive = TarGz({{"train.py", Entry::kFile, "print('hi')\n"},
                               {"sub", Entry::kDir},
                               {"sub/link", Entry::kSymlink, "../train.py"}});
  auto first = store.Put(archive);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  EXPECT_TRUE(first->id.starts_with("sha256:"));
  auto second = store.Put(archive);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->id, first->id);
  EXPECT_EQ(store.Stat(first->id)->size, static_cast<int64_t>(archive.size()));
  EXPECT_EQ(store.Stat("sha256:" + std::string(64, 'f')).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Stat("../../etc/passwd").status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(store.Extract(first->id, (root_ / "dest").string()).ok());
  std::ifstream in(root_ / "dest" / "sub" / "link");
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "print('hi')\n");
  EXPECT_TRUE(fs::is_symlink(root_ / "dest" / "sub" / "link"));
}

TEST_F(SnapshotStoreTest, ExtractRefusesAChainOfLinksThatLeadsOut) {
  // Each link stays inside on its own; t goes through s, which points at the root, and then up.
  SnapshotStore store((root_ / "snapshots").string());
  auto put = store.Put(TarGz({{"a/b/c/d/e/s", Entry::kSymlink, "../../../../.."},
                              {"a/b/c/d/e/t", Entry::kSymlink, "s/../../../../.."}}));
  ASSERT_TRUE(put.ok()) << put.status();
  absl::Status s = store.Extract(put->id, (root_ / "dest").string());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'a/b/c/d/e/t' leads outside the snapshot"), std::string::npos) << s;
}

TEST_F(SnapshotStoreTest, UnsafeArchiveIsNotKept) {
  SnapshotStore store((root_ / "snapshots").string());
  auto r = store.Put(TarGz({{"../evil", Entry::kFile, "x"}}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::is_empty(root_ / "snapshots"));
  EXPECT_FALSE(fs::exists(root_ / "evil"));
}

}  // namespace
}  // namespace dlab
