// The Slurm backend against fake sbatch, squeue and scontrol (shell scripts in a temporary
// directory, found through SlurmOptions.bin_dir): how often, and about which jobs, it asks Slurm.
// The real Slurm runs in tests/e2e/test_backends.py.
#include "backend/slurm/slurm_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/testing/poll.h"
#include "common/testing/temp_dir.h"

namespace dlab {
namespace {

using ::testing::ElementsAre;

using testing::PollUntil;
using testing::ReadText;

void WriteScript(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  chmod(path.c_str(), 0755);
}

class SlurmBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = temp_.path().string();
    bin_ = root_ + "/bin";
    std::filesystem::create_directories(bin_);
    WriteScript(bin_ + "/scontrol", "#!/bin/sh\necho 'Slurmctld(primary) at fake is UP'\n");
    // Job ids from 100 on; four submitters may run sbatch at once.
    WriteScript(bin_ + "/sbatch",
                "#!/bin/sh\nD=$(dirname \"$0\")\nexec 9>\"$D/sbatch.lock\"\nflock 9\n"
                "n=$(cat \"$D/next\" 2>/dev/null || echo 100)\necho $((n + 1)) >\"$D/next\"\n"
                "echo \"$n\"\n");
    // Logs the ids asked about (one line per call), waits while the file `hold` exists (having
    // created `held`), and answers that every job is RUNNING.
    WriteScript(bin_ + "/squeue",
                "#!/bin/sh\nD=$(dirname \"$0\")\nids=\nfor a in \"$@\"; do\n"
                "  case $a in --jobs=*) ids=${a#--jobs=};; esac\ndone\n"
                "echo \"$ids\" >>\"$D/squeue.log\"\n"
                "if [ -e \"$D/hold\" ]; then\n  touch \"$D/held\"\n"
                "  while [ -e \"$D/hold\" ]; do sleep 0.01; done\nfi\n"
                "for id in $(echo \"$ids\" | tr , ' '); do echo \"$id RUNNING\"; done\n");
  }

  void TearDown() override {
    std::filesystem::remove(bin_ + "/hold");
    backend_.reset();
  }

  void Start(absl::Duration poll_interval) {
    absl::StatusOr<std::unique_ptr<Backend>> backend =
        NewSlurmBackend({.shim_path = "/bin/true",
                         .data_dir = root_ + "/data",
                         .slurm = {.bin_dir = bin_},
                         .poll_interval = poll_interval});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
  }

  // Launches a one-task attempt and waits until sbatch has given it a job id; returns the id.
  std::string Launch() {
    int n = ++attempts_;
    LaunchRequest request;
    request.job_id = n;
    request.attempt = 1;
    request.workdir = root_;
    request.attempt_dir = absl::StrCat(root_, "/attempts/", n);
    request.log_path = request.attempt_dir + "/output.log";
    request.tasks = {{.argv = {"true"},
                      .log_path = request.log_path,
                      .allocation = {.cpu_millis = 1000, .memory_bytes = int64_t{256} << 20}}};
    std::filesystem::create_directories(request.attempt_dir);
    EXPECT_TRUE(backend_->Launch(request).ok());
    std::string id_file = request.attempt_dir + "/slurm_job_id";
    EXPECT_TRUE(PollUntil([&] { return !ReadText(id_file).empty(); }));
    dirs_.push_back(request.attempt_dir);
    return std::string(absl::StripAsciiWhitespace(ReadText(id_file)));
  }

  // The ids each squeue call asked about, one string per call.
  std::vector<std::string> SqueueCalls() {
    return absl::StrSplit(ReadText(bin_ + "/squeue.log"), '\n', absl::SkipEmpty());
  }

  testing::TempDir temp_;
  std::string root_;
  std::string bin_;
  std::unique_ptr<Backend> backend_;
  std::vector<std::string> dirs_;
  int attempts_ = 0;
};

TEST_F(SlurmBackendTest, OneSqueueAsksAboutEveryJobAndLaunchesDoNotAddAny) {
  Start(absl::Hours(1));  // after the first job's poll, none comes in this test
  std::string first = Launch();
  ASSERT_TRUE(PollUntil([&] { return !SqueueCalls().empty(); }));
  std::string second = Launch();
  std::string third = Launch();
  // Both submitted since the poll: pending until the next one, without asking squeue.
  for (size_t i = 1; i < dirs_.size(); ++i) {
    absl::StatusOr<AttemptStatus> s = backend_->Inspect(dirs_[i]);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->phase, AttemptPhase::kStarting);
  }
  EXPECT_THAT(SqueueCalls(), ElementsAre(first));
}

TEST_F(SlurmBackendTest, AJobSubmittedWhileSqueueRunsIsAskedAboutByTheNextPoll) {
  Start(absl::Milliseconds(50));
  std::string first = Launch();
  ASSERT_TRUE(PollUntil([&] { return !SqueueCalls().empty(); }));
  std::ofstream(bin_ + "/hold").close();
  ASSERT_TRUE(PollUntil([&] { return std::filesystem::exists(bin_ + "/held"); }));
  // Submitted while that squeue runs: its answer cannot mention the job, which is not ended.
  std::string second = Launch();
  std::filesystem::remove(bin_ + "/hold");
  std::string both = absl::StrCat(first, ",", second);
  EXPECT_TRUE(PollUntil([&] {
    for (const std::string& call : SqueueCalls()) {
      if (call == both) return true;
    }
    return false;
  })) << "squeue calls: "
      << ReadText(bin_ + "/squeue.log");
  for (const std::string& call : SqueueCalls()) EXPECT_NE(call, second) << "asked alone";
}

}  // namespace
}  // namespace dlab
