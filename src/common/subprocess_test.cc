#include "common/subprocess.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dlab {
namespace {

using ::testing::HasSubstr;

TEST(RunCommand, CapturesBothStreamsAndTheExitCode) {
  auto r = RunCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_code, 3);
}

TEST(RunCommand, LooksUpThePathAndReportsSignals) {
  auto r = RunCommand({"sh", "-c", "kill -KILL $$"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 128 + 9);
}

TEST(RunCommand, AMissingProgramIsNotFound) {
  auto r = RunCommand({"/nonexistent/sbatch", "--parsable"});
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("/nonexistent/sbatch"));
}

TEST(RunCommand, AHungProgramIsKilledAtTheDeadline) {
  auto r = RunCommand({"sleep", "30"}, {.timeout = absl::Milliseconds(200)});
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("sleep 30"));
}

TEST(RunCommand, KeepsLargeOutputWhole) {
  auto r = RunCommand({"/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out.size(), 300000u);
}

TEST(ProcessEnvironment, HoldsThisProcesssVariables) {
  setenv("DLAB_SUBPROCESS_TEST", "a=b", 1);
  std::map<std::string, std::string> env = ProcessEnvironment();
  EXPECT_EQ(env["DLAB_SUBPROCESS_TEST"], "a=b");  // split at the first '='
  unsetenv("DLAB_SUBPROCESS_TEST");
  EXPECT_FALSE(ProcessEnvironment().contains("DLAB_SUBPROCESS_TEST"));
}

}  // namespace
}  // namespace dlab
