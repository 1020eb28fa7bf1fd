#include "common/job_token.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/testing/temp_dir.h"

namespace dlab {
namespace {

TEST(JobTokensTest, TokensAreStablePerSecretAndScopedToTheirJob) {
  testing::TempDir dir;
  std::string path = (dir.path() / "secret").string();
  auto a = JobTokens::LoadOrCreate(path);
  ASSERT_TRUE(a.ok()) << a.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto again = JobTokens::LoadOrCreate(path);  // the same secret after a restart
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(a->Token(7), again->Token(7));
  EXPECT_EQ(a->Token(7).size(), 64u);
  EXPECT_TRUE(a->Verify(7, a->Token(7)));
  EXPECT_FALSE(a->Verify(8, a->Token(7)));
  EXPECT_FALSE(a->Verify(7, ""));
  EXPECT_NE(JobTokens(std::string(64, 'x')).Token(7), a->Token(7));
}

}  // namespace
}  // namespace dlab
