#include "backend/local/local_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/testing/poll.h"

namespace dlab {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

using testing::PollUntil;
using testing::ReadText;

class LocalBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dlab-local-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    backend_ = NewBackend();
  }

  void TearDown() override {
    if (backend_ == nullptr) backend_ = NewBackend();
    for (const std::string& dir : launched_) {
      EXPECT_TRUE(backend_->Cancel(dir).ok());
      PollUntil([&] {
        absl::StatusOr<AttemptStatus> s = backend_->Inspect(dir);
        return !s.ok() || s->phase == AttemptPhase::kExited || s->phase == AttemptPhase::kLost;
      });
    }
    backend_.reset();
    std::filesystem::remove_all(root_);
  }

  std::unique_ptr<Backend> NewBackend() {
    absl::StatusOr<std::unique_ptr<Backend>> backend =
        NewLocalBackend({.shim_path = DLAB_SHIM_PATH, .data_dir = root_ + "/data"});
    EXPECT_TRUE(backend.ok()) << backend.status();
    return backend.ok() ? *std::move(backend) : nullptr;
  }

  // A request with its own attempt directory; job ids are unique across concurrent test runs,
  // since they name cgroups.
  LaunchRequest Request(std::vector<std::string> argv) {
    int n = ++attempts_;
    LaunchRequest request;
    request.job_id = int64_t{getpid()} * 1000 + n;
    request.attempt = 1;
    request.workdir = root_;
    request.attempt_dir = absl::StrCat(root_, "/attempts/", n);
    request.log_path = request.attempt_dir + "/output.log";
    request.tasks = {{.argv = std::move(argv),
                      .log_path = request.log_path,
                      .allocation = {.cpu_millis = 1000, .memory_bytes = int64_t{256} << 20}}};
    request.kill_grace = absl::Seconds(5);
    std::filesystem::create_directories(request.attempt_dir);
    return request;
  }

  void Launch(const LaunchRequest& request) {
    ASSERT_TRUE(backend_->Launch(request).ok());
    launched_.push_back(request.attempt_dir);
  }

  AttemptStatus WaitForPhase(const std::string& dir, AttemptPhase phase) {
    AttemptStatus last;
    bool reached = PollUntil([&] {
      absl::StatusOr<AttemptStatus> s = backend_->Inspect(dir);
      if (s.ok()) last = *s;
      return s.ok() && s->phase == phase;
    });
    EXPECT_TRUE(reached) << "phase " << static_cast<int>(last.phase) << ": " << last.message;
    return last;
  }

  bool WaitForLog(const LaunchRequest& request, const std::string& text) {
    return PollUntil([&] { return ReadText(request.log_path).find(text) != std::string::npos; });
  }

  // Records the attempts whose notification found them exited.
  void ListenForNotifications() {
    Backend* backend = backend_.get();  // valid until its thread is joined
    backend->SetListener([this, backend](const std::string& dir) {
      absl::StatusOr<AttemptStatus> s = backend->Inspect(dir);
      if (!s.ok() || s->phase != AttemptPhase::kExited) return;
      std::lock_guard<std::mutex> lock(notified_mu_);
      notified_.insert(dir);
    });
  }

  bool WasNotifiedOfExit(const std::string& dir) {
    std::lock_guard<std::mutex> lock(notified_mu_);
    return notified_.count(dir) > 0;
  }

  std::string root_;
  std::mutex notified_mu_;
  std::set<std::string>
      notified_;  // exited attempts; outlives backend_, whose thread calls the listener
  std::unique_ptr<Backend> backend_;
  std::vector<std::string> launched_;
  int attempts_ = 0;
};

TEST_F(LocalBackendTest, RecordsOutputAndExitCode) {
  LaunchRequest failing = Request({"sh", "-c", "echo out; echo err >&2; pwd; exit 3"});
  LaunchRequest passing = Request({"true"});
  Launch(failing);
  Launch(passing);

  AttemptStatus s = WaitForPhase(failing.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_EQ(s.end_reason, "exited");
  EXPECT_EQ(s.signal, "");
  EXPECT_EQ(s.message, "exited with code 3");
  ASSERT_TRUE(s.start_time.has_value() && s.end_time.has_value());
  EXPECT_LE(*s.start_time, *s.end_time);
  ASSERT_EQ(s.limit_notes.size(), 2u);
  EXPECT_THAT(s.limit_notes[0], StartsWith("cpu: "));
  EXPECT_THAT(s.limit_notes[1], StartsWith("memory: "));
  EXPECT_EQ(ReadText(failing.log_path), absl::StrCat("out\nerr\n", root_, "\n"));

  AttemptStatus ok = WaitForPhase(passing.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.end_reason, "exited");
}

TEST_F(LocalBackendTest, MissingProgramIsExecFailed) {
  LaunchRequest request = Request({"dlab-no-such-program"});
  Launch(request);
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(s.exit_code, 127);
  EXPECT_EQ(s.end_reason, "exec_failed");
  EXPECT_EQ(s.message, "exec dlab-no-such-program: No such file or directory");
  EXPECT_FALSE(s.start_time.has_value());
  EXPECT_THAT(ReadText(request.log_path), HasSubstr(s.message));
}

TEST_F(LocalBackendTest, CancelKillsACommandIgnoringSigtermAfterTheGrace) {
  LaunchRequest request = Request({"sh", "-c", "trap '' TERM; echo ready; sleep 60"});
  request.kill_grace = absl::Milliseconds(300);
  Launch(request);
  ASSERT_TRUE(WaitForLog(request, "ready"));
  ASSERT_TRUE(backend_->Cancel(request.attempt_dir).ok());
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(s.end_reason, "cancelled");
  EXPECT_EQ(s.signal, "SIGKILL");
  EXPECT_EQ(s.exit_code, 128 + SIGKILL);
  ASSERT_TRUE(s.start_time.has_value() && s.end_time.has_value());
  EXPECT_LT(*s.end_time - *s.start_time, absl::Seconds(20));
}

TEST_F(LocalBackendTest, CancelEndsAPlainCommandBySigtermAndIsIdempotent) {
  LaunchRequest request = Request({"sleep", "60"});
  Launch(request);
  WaitForPhase(request.attempt_dir, AttemptPhase::kRunning);
  ASSERT_TRUE(backend_->Cancel(request.attempt_dir).ok());
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(s.end_reason, "cancelled");
  EXPECT_EQ(s.signal, "SIGTERM");
  EXPECT_EQ(s.exit_code, 128 + SIGTERM);
  EXPECT_EQ(s.message, "cancelled: killed by SIGTERM");
  EXPECT_TRUE(backend_->Cancel(request.attempt_dir).ok());
}

TEST_F(LocalBackendTest, CancelRightAfterLaunchIsNotLost) {
  LaunchRequest request = Request({"sleep", "60"});
  Launch(request);
  ASSERT_TRUE(backend_->Cancel(request.attempt_dir).ok());
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(s.end_reason, "cancelled");
}

TEST_F(LocalBackendTest, MaxRuntimeStopsTheCommand) {
  LaunchRequest request = Request({"sleep", "60"});
  request.max_runtime = absl::Milliseconds(300);
  Launch(request);
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(s.end_reason, "max_runtime");
  EXPECT_EQ(s.signal, "SIGTERM");
  EXPECT_THAT(s.message, StartsWith("max_runtime 300ms exceeded"));
}

TEST_F(LocalBackendTest, CommandSeesItsGpusAndEnvironment) {
  const std::vector<std::string> argv = {
      "sh", "-c", "echo \"gpus=[$CUDA_VISIBLE_DEVICES] set=${CUDA_VISIBLE_DEVICES+yes} var=$V\""};
  LaunchRequest with_gpus = Request(argv);
  with_gpus.tasks[0].allocation.gpus = {0, 2};
  with_gpus.env = {{"V", "hello"}};
  LaunchRequest without_gpus = Request(argv);
  Launch(with_gpus);
  Launch(without_gpus);
  WaitForPhase(with_gpus.attempt_dir, AttemptPhase::kExited);
  WaitForPhase(without_gpus.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(ReadText(with_gpus.log_path), "gpus=[0,2] set=yes var=hello\n");
  EXPECT_EQ(ReadText(without_gpus.log_path), "gpus=[] set=yes var=\n");
}

TEST_F(LocalBackendTest, AttemptOutlivesTheBackendAndARestartedBackendFollowsIt) {
  std::string stop_file = root_ + "/stop";
  LaunchRequest request = Request({"sh", "-c",
                                   absl::StrCat("echo started; while [ ! -e ", stop_file,
                                                " ]; do sleep 0.05; done; echo finished")});
  Launch(request);
  WaitForPhase(request.attempt_dir, AttemptPhase::kRunning);
  backend_.reset();  // dlabd goes away

  backend_ = NewBackend();
  ASSERT_NE(backend_, nullptr);
  ListenForNotifications();
  absl::StatusOr<AttemptStatus> s = backend_->Inspect(request.attempt_dir);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->phase, AttemptPhase::kRunning);

  std::ofstream(stop_file).put('x');
  AttemptStatus ended = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(ended.exit_code, 0);
  EXPECT_EQ(ReadText(request.log_path), "started\nfinished\n");
  EXPECT_TRUE(PollUntil([&] { return WasNotifiedOfExit(request.attempt_dir); }));
}

TEST_F(LocalBackendTest, ListenerHearsOfTheEnd) {
  ListenForNotifications();
  LaunchRequest request = Request({"true"});
  Launch(request);
  EXPECT_TRUE(PollUntil([&] { return WasNotifiedOfExit(request.attempt_dir); }));
}

TEST_F(LocalBackendTest, AttemptWithoutSupervisorOrRecordIsLost) {
  LaunchRequest request = Request({"true"});
  std::ofstream(request.attempt_dir + "/launch.json") << "{}";
  EXPECT_EQ(backend_->Inspect(request.attempt_dir)->phase, AttemptPhase::kLost);
  std::ofstream(request.attempt_dir + "/lock").put('\n');  // a lock nobody holds
  EXPECT_EQ(backend_->Inspect(request.attempt_dir)->phase, AttemptPhase::kLost);
  EXPECT_TRUE(backend_->Cancel(request.attempt_dir).ok());
}

TEST_F(LocalBackendTest, UnlaunchedAttemptIsNotFound) {
  LaunchRequest request = Request({"true"});
  EXPECT_EQ(backend_->Inspect(request.attempt_dir).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->Cancel(request.attempt_dir).code(), absl::StatusCode::kNotFound);
}

TEST_F(LocalBackendTest, SecondBackendOnTheSameDataDirIsRefused) {
  absl::StatusOr<std::unique_ptr<Backend>> second =
      NewLocalBackend({.shim_path = DLAB_SHIM_PATH, .data_dir = root_ + "/data"});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
}

// A supervisor killed outright must read as lost, which it would not if a concurrent launch
// had leaked its lock fd into another supervisor.
TEST_F(LocalBackendTest, KilledSupervisorIsLostDespiteConcurrentLaunches) {
  std::vector<LaunchRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Request({"sleep", "60"}));
  std::vector<std::thread> threads;
  for (const LaunchRequest& r : requests) {
    threads.emplace_back([&] { EXPECT_TRUE(backend_->Launch(r).ok()); });
  }
  for (std::thread& t : threads) t.join();
  for (const LaunchRequest& r : requests) {
    launched_.push_back(r.attempt_dir);
    WaitForPhase(r.attempt_dir, AttemptPhase::kRunning);
  }
  const std::string& victim = requests[0].attempt_dir;
  int shim_pid = 0;
  ASSERT_TRUE(
      absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadText(victim + "/shim.pid")), &shim_pid));
  ASSERT_EQ(kill(shim_pid, SIGKILL), 0);
  AttemptStatus lost = WaitForPhase(victim, AttemptPhase::kLost);
  EXPECT_FALSE(lost.message.empty());
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_EQ(backend_->Inspect(requests[i].attempt_dir)->phase, AttemptPhase::kRunning);
  }
  // The orphaned command: its process group is recorded in started.json.
  std::string started = ReadText(victim + "/started.json");
  size_t at = started.find("\"pgid\": ");
  ASSERT_NE(at, std::string::npos);
  kill(-std::stoi(started.substr(at + 8)), SIGKILL);
}

TEST_F(LocalBackendTest, CgroupsCanBeDisabled) {
  setenv("DLAB_NO_CGROUPS", "1", 1);
  LaunchRequest request = Request({"true"});
  Launch(request);
  unsetenv("DLAB_NO_CGROUPS");
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_THAT(s.limit_notes, ::testing::ElementsAre("cpu: not enforced: cgroups disabled",
                                                    "memory: not enforced: cgroups disabled"));
}

// A request whose tasks run the given shell scripts; rank N logs to task-N.log.
LaunchRequest Gang(LaunchRequest request, const std::vector<std::string>& scripts) {
  request.tasks.clear();
  for (size_t r = 0; r < scripts.size(); ++r) {
    request.tasks.push_back(
        {.rank = static_cast<int>(r),
         .argv = {"sh", "-c", scripts[r]},
         .env = {{"RANK", std::to_string(r)}},
         .log_path = absl::StrCat(request.attempt_dir, "/task-", r, ".log"),
         .allocation = {.cpu_millis = 500, .memory_bytes = int64_t{128} << 20}});
  }
  return request;
}

TEST_F(LocalBackendTest, FailedTaskStopsTheGang) {
  LaunchRequest request =
      Gang(Request({"unused"}), {"echo rank $RANK up; trap 'echo rank $RANK stopping; exit 0' "
                                 "TERM; while :; do sleep 0.05; done",
                                 "echo rank $RANK up; printf 'no newline'; sleep 0.3; exit 3"});
  Launch(request);
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(s.end_reason, "exited");
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_EQ(s.failed_rank, 1);
  EXPECT_EQ(s.message, "task 1 exited with code 3; the other tasks were stopped");
  ASSERT_EQ(s.tasks.size(), 2u);
  EXPECT_EQ(s.tasks[0].end_reason, "stopped");
  EXPECT_EQ(s.tasks[1].end_reason, "exited");
  EXPECT_EQ(s.tasks[1].exit_code, 3);
  // Each task's own log holds its output as written; the attempt's log every line by rank.
  EXPECT_EQ(ReadText(request.tasks[1].log_path), "rank 1 up\nno newline");
  EXPECT_THAT(ReadText(request.tasks[0].log_path), HasSubstr("rank 0 stopping\n"));
  std::string merged = ReadText(request.log_path);
  EXPECT_THAT(merged, HasSubstr("[rank 0] rank 0 up\n"));
  EXPECT_THAT(merged, HasSubstr("[rank 1] rank 1 up\n"));
  EXPECT_THAT(merged, HasSubstr("[rank 1] no newline\n"));
  EXPECT_THAT(merged, HasSubstr("[dlab] task 1 exited with code 3; stopping the other tasks\n"));
  EXPECT_THAT(merged, HasSubstr("[rank 0] rank 0 stopping\n"));
}

TEST_F(LocalBackendTest, GangSucceedsWhenEveryTaskDoesAndAuxiliaryTasksAreStopped) {
  LaunchRequest request = Gang(Request({"unused"}), {"sleep 60", "exit 0", "sleep 0.2"});
  request.tasks[0].auxiliary = true;  // like a parameter server
  Launch(request);
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(s.failed_rank, -1);
  ASSERT_EQ(s.tasks.size(), 3u);
  EXPECT_EQ(s.tasks[0].end_reason, "stopped");
  EXPECT_EQ(s.tasks[0].signal, "SIGTERM");
  EXPECT_EQ(s.tasks[2].end_reason, "exited");
}

TEST_F(LocalBackendTest, CancelStopsEveryTaskOfTheGang) {
  LaunchRequest request = Gang(Request({"unused"}), {"echo a; sleep 60", "echo b; sleep 60"});
  Launch(request);
  ASSERT_TRUE(WaitForLog(request, "[rank 1] b"));
  ASSERT_TRUE(backend_->Cancel(request.attempt_dir).ok());
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  EXPECT_EQ(s.end_reason, "cancelled");
  ASSERT_EQ(s.tasks.size(), 2u);
  EXPECT_EQ(s.tasks[0].end_reason, "cancelled");
  EXPECT_EQ(s.tasks[1].end_reason, "cancelled");
}

TEST_F(LocalBackendTest, MemoryLimitEndsInOomKill) {
  // awk doubles a string until the kernel stops it.
  LaunchRequest request = Request({"awk", "BEGIN { s = \"x\"; while (1) s = s s }"});
  request.tasks[0].allocation.memory_bytes = int64_t{32} << 20;
  request.max_runtime = absl::Seconds(20);
  Launch(request);
  AttemptStatus s = WaitForPhase(request.attempt_dir, AttemptPhase::kExited);
  ASSERT_EQ(s.limit_notes.size(), 2u);
  if (s.limit_notes[1].find("memory: 32Mi enforced") == std::string::npos) {
    GTEST_SKIP() << "memory limit not enforced here: " << s.limit_notes[1];
  }
  EXPECT_EQ(s.end_reason, "oom_killed");
  EXPECT_EQ(s.signal, "SIGKILL");
  EXPECT_THAT(s.message, HasSubstr("OOM"));
}

// A process that is gone or a zombie (nobody may reap orphans here).
bool ProcessGone(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  return text.empty() || (paren != std::string::npos && text.substr(paren + 2, 1) == "Z");
}

TEST_F(LocalBackendTest, CancelOfALostAttemptKillsWhatIsLeftOfIt) {
  LaunchRequest request = Request({"/bin/sh", "-c", "sleep 60 & echo $! > bg.pid; exec sleep 61"});
  request.workdir = request.attempt_dir;
  request.env = {{"DLAB_CHECKPOINT_DIR", root_ + "/checkpoints"}, {"DLAB_ATTEMPT", "1"}};
  Launch(request);
  WaitForPhase(request.attempt_dir, AttemptPhase::kRunning);
  ASSERT_TRUE(PollUntil([&] { return std::filesystem::exists(request.attempt_dir + "/bg.pid"); }));
  int shim_pid = 0;
  int background = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadText(request.attempt_dir + "/shim.pid")), &shim_pid));
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadText(request.attempt_dir + "/bg.pid")), &background));
  std::string started = ReadText(request.attempt_dir + "/started.json");
  int main_pid = std::stoi(started.substr(started.find("\"pid\": ") + 7));
  ASSERT_EQ(kill(shim_pid, SIGKILL), 0);
  WaitForPhase(request.attempt_dir, AttemptPhase::kLost);
  EXPECT_FALSE(ProcessGone(main_pid));  // the supervisor's death alone leaves the command running
  EXPECT_TRUE(backend_->Cancel(request.attempt_dir).ok());
  EXPECT_TRUE(PollUntil([&] { return ProcessGone(main_pid) && ProcessGone(background); }));
}

}  // namespace
}  // namespace dlab
