#include "backend/local/slurm_steps.h"

#include <sys/wait.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dlab {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ExpandSlurmHostlist, ExpandsRangesListsAndPadding) {
  EXPECT_THAT(*ExpandSlurmHostlist("vm"), ElementsAre("vm"));
  EXPECT_THAT(*ExpandSlurmHostlist("n[1-3,7],gpu5"), ElementsAre("n1", "n2", "n3", "n7", "gpu5"));
  EXPECT_THAT(*ExpandSlurmHostlist("gpu[08-10]"), ElementsAre("gpu08", "gpu09", "gpu10"));
  EXPECT_THAT(*ExpandSlurmHostlist("r[1-2]n[1,3]"), ElementsAre("r1n1", "r1n3", "r2n1", "r2n3"));
  EXPECT_THAT(*ExpandSlurmHostlist("a.b-c,d"), ElementsAre("a.b-c", "d"));
}

TEST(ExpandSlurmHostlist, RefusesWhatItCannotRead) {
  for (const char* bad : {"n[1-3", "n1-3]", "n[3-1]", "n[x]", "n[-2]"}) {
    EXPECT_FALSE(ExpandSlurmHostlist(bad).ok()) << bad;
  }
}

TEST(ExpandSlurmTasksPerNode, RepeatsCounts) {
  EXPECT_THAT(*ExpandSlurmTasksPerNode("2(x3),1"), ElementsAre(2, 2, 2, 1));
  EXPECT_THAT(*ExpandSlurmTasksPerNode("4"), ElementsAre(4));
  EXPECT_FALSE(ExpandSlurmTasksPerNode("2(x)").ok());
  EXPECT_FALSE(ExpandSlurmTasksPerNode("two").ok());
}

TEST(SlurmRankHosts, LaysRanksOutInBlocksOverTheNodes) {
  EXPECT_THAT(*SlurmRankHosts("n[1-2]", "2(x2)", 4), ElementsAre("n1", "n1", "n2", "n2"));
  EXPECT_THAT(*SlurmRankHosts("n[1-3]", "1,2,1", 4), ElementsAre("n1", "n2", "n2", "n3"));
  EXPECT_THAT(*SlurmRankHosts("vm", "2", 2), ElementsAre("vm", "vm"));
  EXPECT_THAT(std::string(SlurmRankHosts("n[1-2]", "1", 2).status().message()),
              HasSubstr("names 2 nodes"));
  EXPECT_THAT(std::string(SlurmRankHosts("n[1-2]", "1,1", 3).status().message()),
              HasSubstr("room for 2 tasks, not 3"));
}

TEST(SrunCommand, AsksForExactlyTheTasksShareOnItsNode) {
  TaskSpec gpu{.rank = 1, .cpu_millis = 1500, .memory_bytes = 300 << 20, .gpus = {0, 1}};
  EXPECT_THAT(SrunCommand({.bin_dir = "/opt/slurm/bin/", .gpu_type = "a100"}, gpu, "n2"),
              ElementsAre("/opt/slurm/bin/srun", "--nodes=1", "--ntasks=1", "--nodelist=n2",
                          "--exact", "--quiet", "--input=none", "--job-name=rank-1",
                          "--cpus-per-task=2", "--mem=300", "--gres=gpu:a100:2"));
  TaskSpec cpu{.rank = 0};
  EXPECT_THAT(SrunCommand({}, cpu, "n1"),
              ElementsAre("srun", "--nodes=1", "--ntasks=1", "--nodelist=n1", "--exact", "--quiet",
                          "--input=none", "--job-name=rank-0", "--cpus-per-task=1", "--gres=none"));
}

TEST(SrunWaitStatus, TurnsSrunsSignalExitCodesIntoSignals) {
  int killed = SrunWaitStatus(137 << 8);  // srun exited 137: its task was killed by SIGKILL
  EXPECT_TRUE(WIFSIGNALED(killed));
  EXPECT_EQ(WTERMSIG(killed), SIGKILL);
  EXPECT_EQ(WTERMSIG(SrunWaitStatus(143 << 8)), SIGTERM);
  EXPECT_EQ(SrunWaitStatus(3 << 8), 3 << 8);
  EXPECT_EQ(SrunWaitStatus(SIGSEGV), SIGSEGV);  // srun itself killed
}

}  // namespace
}  // namespace dlab
