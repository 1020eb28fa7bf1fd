#include "cli/dlabignore.h"

#include <gtest/gtest.h>

#include <string>

namespace dlab {
namespace {

struct Case {
  std::string rules;
  std::string path;
  EntryKind kind;
  bool ignored;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "rules {" << c.rules << "} path " << c.path
      << (c.kind == EntryKind::kDirectory ? " (dir)" : "");
}

class IgnoreRulesTest : public testing::TestWithParam<Case> {};

TEST_P(IgnoreRulesTest, DecidesLikeGitignore) {
  const Case& c = GetParam();
  EXPECT_EQ(IgnoreRules::Parse(c.rules).IsIgnored(c.path, c.kind), c.ignored);
}

constexpr EntryKind kFile = EntryKind::kFile;
constexpr EntryKind kDir = EntryKind::kDirectory;

INSTANTIATE_TEST_SUITE_P(
    Table, IgnoreRulesTest,
    testing::Values(
        // Comments and blank lines are not rules.
        Case{"# data\n\n", "data", kFile, false}, Case{"# data\n\ndata\n", "data", kFile, true},
        Case{"\\#notes\n", "#notes", kFile, true},
        // Unanchored names match at any depth.
        Case{"*.pyc\n", "train.pyc", kFile, true}, Case{"*.pyc\n", "pkg/sub/mod.pyc", kFile, true},
        Case{"*.pyc\n", "train.py", kFile, false}, Case{"data\n", "a/b/data", kDir, true},
        // Files inside an ignored directory are ignored.
        Case{"data\n", "a/data/x.csv", kFile, true},
        // Negation: the last matching rule wins.
        Case{"*.log\n!keep.log\n", "keep.log", kFile, false},
        Case{"*.log\n!keep.log\n", "other.log", kFile, true},
        Case{"!keep.log\n*.log\n", "keep.log", kFile, true},
        // A file cannot be re-included when its directory is excluded.
        Case{"logs/\n!logs/keep.txt\n", "logs/keep.txt", kFile, true},
        Case{"logs/*\n!logs/keep.txt\n", "logs/keep.txt", kFile, false},
        Case{"logs/*\n!logs/keep.txt\n", "logs/drop.txt", kFile, true},
        // Trailing slash: directories only.
        Case{"build/\n", "build", kDir, true}, Case{"build/\n", "build", kFile, false},
        Case{"build/\n", "src/build", kDir, true}, Case{"build/\n", "src/build/out.o", kFile, true},
        // A leading or inner slash anchors the pattern to the root.
        Case{"/out\n", "out", kDir, true}, Case{"/out\n", "src/out", kDir, false},
        Case{"docs/*.md\n", "docs/a.md", kFile, true},
        Case{"docs/*.md\n", "x/docs/a.md", kFile, false},
        Case{"docs/*.md\n", "docs/sub/a.md", kFile, false},
        // Wildcards.
        Case{"file?.txt\n", "file1.txt", kFile, true},
        Case{"file?.txt\n", "file10.txt", kFile, false}, Case{"run[0-9]\n", "run7", kFile, true},
        Case{"run[0-9]\n", "runx", kFile, false}, Case{"run[!0-9]\n", "runx", kFile, true},
        // `**`: any number of directories.
        Case{"**/cache\n", "cache", kDir, true}, Case{"**/cache\n", "a/b/cache", kDir, true},
        Case{"a/**/b\n", "a/b", kFile, true}, Case{"a/**/b\n", "a/x/y/b", kFile, true},
        Case{"a/**/b\n", "x/a/b", kFile, false}, Case{"data/**\n", "data/x/y.bin", kFile, true},
        Case{"data/**\n", "data", kDir, false}, Case{"data/**\n", "other/data/x", kFile, false},
        Case{"data/**\n!data/small.csv\n", "data/small.csv", kFile, false},
        // .git is always left out, even when negated.
        Case{"", ".git", kDir, true}, Case{"", "sub/.git/config", kFile, true},
        Case{"!.git/\n", ".git/HEAD", kFile, true}, Case{"", ".gitignore", kFile, false},
        // Windows line endings and trailing spaces.
        Case{"*.tmp \r\n", "x.tmp", kFile, true}));

}  // namespace
}  // namespace dlab
