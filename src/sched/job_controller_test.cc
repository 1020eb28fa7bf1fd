#include "sched/job_controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/testing/temp_dir.h"
#include "store/forwarding_store.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

// A backend whose attempts do what the test says.
class FakeBackend final : public Backend {
 public:
  absl::StatusOr<std::vector<BackendNode>> Inventory() override {
    return std::vector<BackendNode>{};
  }
  absl::Status Launch(const LaunchRequest& r) override {
    std::unique_lock lock(mu_);
    launching_ = true;
    gate_cv_.wait(lock, [&] { return gate_open_; });
    launching_ = false;
    launches_.push_back(r);
    status_[r.attempt_dir] = {.phase = AttemptPhase::kStarting};
    return absl::OkStatus();
  }
  absl::StatusOr<AttemptStatus> Inspect(const std::string& dir) override {
    std::lock_guard lock(mu_);
    auto it = status_.find(dir);
    if (it == status_.end()) return absl::NotFoundError("never launched");
    return it->second;
  }
  // Like the real one: an attempt not launched yet cannot be signalled.
  absl::Status Cancel(const std::string& dir) override {
    std::lock_guard lock(mu_);
    if (!status_.contains(dir)) return absl::NotFoundError("never launched");
    cancelled_.push_back(dir);
    return absl::OkStatus();
  }
  // While closed, Launch blocks (as while a large snapshot unpacks).
  void SetGate(bool open) {
    std::lock_guard lock(mu_);
    gate_open_ = open;
    gate_cv_.notify_all();
  }
  bool launching() {
    std::lock_guard lock(mu_);
    return launching_;
  }
  void SetListener(std::function<void(const std::string&)> fn) override {
    std::lock_guard lock(mu_);
    listener_ = std::move(fn);
  }

  // Makes the attempt's supervisor report status, and tells the controller.
  void Report(const std::string& dir, AttemptStatus s) {
    std::function<void(const std::string&)> listener;
    {
      std::lock_guard lock(mu_);
      status_[dir] = std::move(s);
      listener = listener_;
    }
    if (listener) listener(dir);
  }
  void Run(const std::string& dir) {
    Report(
        dir,
        {.phase = AttemptPhase::kRunning, .start_time = absl::Now(), .limit_notes = {"cpu: ok"}});
  }
  void Exit(const std::string& dir, int code, std::string reason = "exited") {
    Report(dir, {.phase = AttemptPhase::kExited,
                 .exit_code = code,
                 .end_reason = std::move(reason),
                 .start_time = absl::Now(),
                 .end_time = absl::Now()});
  }
  std::vector<LaunchRequest> launches() {
    std::lock_guard lock(mu_);
    return launches_;
  }
  std::vector<std::string> cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  void Forget(const std::string& dir) {
    std::lock_guard lock(mu_);
    status_.erase(dir);
  }

 private:
  std::mutex mu_;
  std::vector<LaunchRequest> launches_;
  std::vector<std::string> cancelled_;
  std::map<std::string, AttemptStatus> status_;
  std::function<void(const std::string&)> listener_;
  std::condition_variable gate_cv_;
  bool gate_open_ = true;
  bool launching_ = false;
};

// The store as the controller sees it: refuses the next transitions from one state to another
// (as SQLite does on a disk error), then lets them through again.
class RefusingStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void Refuse(JobState from, JobState to, int times = 1) {
    std::lock_guard lock(mu_);
    refuse_[{from, to}] = times;
  }
  int refused() {
    std::lock_guard lock(mu_);
    return refused_;
  }
  absl::Status Transition(const JobTransition& t) override {
    {
      std::lock_guard lock(mu_);
      if (int& left = refuse_[{t.from, t.to}]; left > 0) {
        --left;
        ++refused_;
        return absl::UnavailableError("disk I/O error (refused by the test)");
      }
    }
    return ForwardingStore::Transition(t);
  }

 private:
  std::mutex mu_;
  std::map<std::pair<JobState, JobState>, int> refuse_;
  int refused_ = 0;
};

template <typename F>
bool Eventually(F f) {
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < deadline;) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

class JobControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.path();
    store_ = *Store::OpenSqlite((dir_ / "dlab.db").string());
    snapshots_ = std::make_unique<SnapshotStore>((dir_ / "snapshots").string());
    StartController();
  }
  void TearDown() override { controller_.reset(); }
  void StartController(SchedulerConfig scheduler = {}) {
    controller_.reset();
    refusing_ = std::make_unique<RefusingStore>(store_.get());  // store_ may be a new one
    controller_ = std::make_unique<JobController>(
        ControllerOptions{
            .data_dir = dir_.string(),
            .nodes = {{.cpu_millis = 2000,
                       .memory_bytes = 4LL << 30,
                       .gpus = {{0, "H100", "H100"}}}},
            .scheduler = std::move(scheduler),
            .reconcile_interval = absl::Milliseconds(20),
            .first_port = 30000,
            .last_port = 30009,
            .port_is_free = [](int) { return true; },
            .machine_wide_ports = false,
            .latest_checkpoint = [this](int64_t id) -> std::optional<SavedCheckpoint> {
              std::lock_guard lock(checkpoints_mu_);
              auto it = checkpoints_.find(id);
              if (it == checkpoints_.end()) return std::nullopt;
              return it->second;
            },
            .job_token = [](int64_t id) { return absl::StrCat("token-", id); }},
        refusing_.get(), snapshots_.get(), &backend_);
    ASSERT_TRUE(controller_->Start("http://127.0.0.1:1").ok());
  }
  int64_t Submit(int64_t cpu_millis = 1000, int max_restarts = 0, int gpus = 0,
                 std::vector<TaskGroup> tasks = {}, absl::Duration backoff = absl::ZeroDuration()) {
    JobSpec spec{.name = "j", .command = {"true"}};
    spec.resources = {.cpu_millis = cpu_millis, .memory_bytes = 1 << 20, .gpus = gpus};
    spec.max_restarts = max_restarts;
    spec.task_groups = std::move(tasks);
    spec.restart_backoff = backoff;
    auto r = controller_->Submit(spec, "", "");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->job.id : 0;
  }
  // Waits until the controller has handed n attempts to the backend.
  bool Launched(size_t n) {
    return Eventually([&] { return backend_.launches().size() == n; });
  }
  JobState State(int64_t id) { return store_->GetJob(id)->state; }
  bool Reaches(int64_t id, JobState s) {
    return Eventually([&] { return State(id) == s; });
  }
  std::string AttemptDir(int64_t id, int attempt) {
    return (dir_ / "jobs" / std::to_string(id) / "attempts" / std::to_string(attempt)).string();
  }

  // dlabd stops and starts again.
  void RestartController(SchedulerConfig scheduler) {
    controller_.reset();
    backend_.SetListener(nullptr);
    StartController(std::move(scheduler));
  }
  // Under kPreemptAtOnce, two jobs of 1 CPU fill the node: old started 100 s ago, young 50 s ago
  // by their attempts' reports. Until dlabd restarts, the scheduler knows them by the cycles that
  // started them, so young is started in a later cycle than old (in the same one, they would tie).
  std::pair<int64_t, int64_t> OldAndYoungJobs() {
    RestartController(kPreemptAtOnce);
    int64_t old_job = Submit(1000);
    EXPECT_TRUE(Launched(1));
    int64_t young_job = Submit(1000);
    EXPECT_TRUE(Launched(2));
    absl::Time now = absl::Now();
    for (auto [id, started] : {std::pair{old_job, now - absl::Seconds(100)},
                               std::pair{young_job, now - absl::Seconds(50)}}) {
      backend_.Report(AttemptDir(id, 1), {.phase = AttemptPhase::kRunning, .start_time = started});
      EXPECT_TRUE(Reaches(id, JobState::kRunning));
    }
    return {old_job, young_job};
  }
  // A job of priority 10 and 1 CPU.
  int64_t SubmitUrgent() {
    JobSpec spec{.name = "urgent", .command = {"true"}, .priority = 10};
    spec.resources = {.cpu_millis = 1000, .memory_bytes = 1 << 20};
    auto r = controller_->Submit(spec, "", "");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->job.id : 0;
  }
  const SchedulerConfig kPreemptAtOnce{.policy = "priority",
                                       .params = {{"preemption.min_runtime", "0"}}};

  void SetCheckpoint(int64_t id, CheckpointRef ref, absl::Time time = absl::Now()) {
    std::lock_guard lock(checkpoints_mu_);
    checkpoints_[id] = {.ref = std::move(ref), .time = time};
  }

  testing::TempDir temp_;
  fs::path dir_;
  std::mutex checkpoints_mu_;
  std::map<int64_t, SavedCheckpoint> checkpoints_;
  FakeBackend backend_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RefusingStore> refusing_;  // store_ as the controller sees it
  std::unique_ptr<SnapshotStore> snapshots_;
  std::unique_ptr<JobController> controller_;
};

TEST_F(JobControllerTest, JobRunsToSuccessWithTheEnvironmentContract) {
  int64_t id = Submit(1000, 0, 1);
  ASSERT_TRUE(Launched(1));
  EXPECT_EQ(State(id), JobState::kStarting);
  LaunchRequest launch = backend_.launches()[0];
  ASSERT_EQ(launch.tasks.size(), 1u);
  EXPECT_EQ(launch.tasks[0].allocation.gpus, std::vector<int>{0});
  EXPECT_EQ(launch.tasks[0].env.at("CUDA_VISIBLE_DEVICES"), "0");
  EXPECT_EQ(launch.tasks[0].env.at("RANK"), "0");
  EXPECT_EQ(launch.tasks[0].env.at("WORLD_SIZE"), "1");
  EXPECT_EQ(launch.tasks[0].env.at("MASTER_PORT"), "30000");
  EXPECT_EQ(launch.tasks[0].log_path, launch.log_path);
  EXPECT_EQ(launch.env.at("DLAB_TOKEN"), absl::StrCat("token-", id));
  EXPECT_EQ(launch.env.at("DLAB_JOB_ID"), std::to_string(id));
  EXPECT_EQ(launch.env.at("DLAB_ATTEMPT"), "1");
  EXPECT_EQ(launch.env.at("DLAB_RESUME_FROM"), "");
  EXPECT_TRUE(fs::is_directory(launch.env.at("DLAB_CHECKPOINT_DIR")));
  backend_.Run(launch.attempt_dir);
  ASSERT_TRUE(Reaches(id, JobState::kRunning));
  backend_.Exit(launch.attempt_dir, 0);
  ASSERT_TRUE(Reaches(id, JobState::kSucceeded));
  auto job = store_->GetJob(id);
  EXPECT_EQ(job->exit_code, 0);
  EXPECT_EQ(store_->ListAttempts(id)->at(0).limit_notes, std::vector<std::string>{"cpu: ok"});
}

TEST_F(JobControllerTest, FailedAttemptsRestartUpToMaxRestarts) {
  int64_t id = Submit(1000, 1);
  ASSERT_TRUE(Launched(1));
  fs::path checkpoint = dir_ / "jobs" / std::to_string(id) / "checkpoints" / "step-100";
  fs::create_directories(checkpoint);
  SetCheckpoint(id, {.id = 7, .step = 100, .path = checkpoint.string()});
  backend_.Exit(AttemptDir(id, 1), 3);
  ASSERT_TRUE(Launched(2));
  LaunchRequest second = backend_.launches()[1];
  EXPECT_EQ(second.env.at("DLAB_ATTEMPT"), "2");
  EXPECT_EQ(second.env.at("DLAB_RESUME_FROM"), checkpoint.string());
  backend_.Exit(second.attempt_dir, 4);
  ASSERT_TRUE(Reaches(id, JobState::kFailed));
  auto job = store_->GetJob(id);
  EXPECT_EQ(job->attempts, 2);
  EXPECT_EQ(job->exit_code, 4);
  EXPECT_EQ(job->reason, "exited with code 4; no restarts left (max_restarts 1)");
  EXPECT_EQ(job->attempt_list[0].failure, "user");
  EXPECT_TRUE(job->attempt_list[0].restart_counted);
  EXPECT_FALSE(job->attempt_list[0].resumed_from.has_value());
  ASSERT_TRUE(job->attempt_list[1].resumed_from.has_value());
  EXPECT_EQ(job->attempt_list[1].resumed_from->step, 100);
}

TEST_F(JobControllerTest, InfrastructureFailuresDoNotCountAgainstMaxRestarts) {
  int64_t id = Submit(1000, /*max_restarts=*/0);
  ASSERT_TRUE(Launched(1));
  backend_.Report(AttemptDir(id, 1), {.phase = AttemptPhase::kExited,
                                      .exit_code = 137,
                                      .signal = "SIGKILL",
                                      .end_reason = "exited",
                                      .end_time = absl::Now()});
  ASSERT_TRUE(Launched(2));
  backend_.Report(AttemptDir(id, 2), {.phase = AttemptPhase::kLost, .end_time = absl::Now()});
  ASSERT_TRUE(Launched(3));
  backend_.Exit(AttemptDir(id, 3), 1);  // a user error, and none allowed
  ASSERT_TRUE(Reaches(id, JobState::kFailed));
  auto job = store_->GetJob(id);
  ASSERT_EQ(job->attempt_list.size(), 3u);
  EXPECT_EQ(job->attempt_list[0].failure, "infrastructure");
  EXPECT_FALSE(job->attempt_list[0].restart_counted);
  EXPECT_THAT(job->attempt_list[0].reason, ::testing::HasSubstr("restarting without counting"));
  EXPECT_EQ(job->attempt_list[1].failure, "infrastructure");
  EXPECT_EQ(job->attempt_list[2].failure, "user");
  EXPECT_EQ(job->reason, "exited with code 1");
}

TEST_F(JobControllerTest, RestartWaitsForTheBackoffAndCanBeCancelledMeanwhile) {
  int64_t id = Submit(1000, 3, 0, {}, absl::Milliseconds(300));
  ASSERT_TRUE(Launched(1));
  absl::Time failed = absl::Now();
  backend_.Exit(AttemptDir(id, 1), 1);
  ASSERT_TRUE(Launched(2));
  EXPECT_GE(absl::Now() - failed, absl::Milliseconds(300));
  backend_.Exit(AttemptDir(id, 2), 1);  // second consecutive failure: 600 ms
  ASSERT_TRUE(Reaches(id, JobState::kRestarting));
  EXPECT_THAT(store_->GetJob(id)->reason, ::testing::HasSubstr("in 600ms"));
  auto cancelled = controller_->Cancel(id);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
  absl::SleepFor(absl::Milliseconds(700));  // past the backoff: nothing may start
  EXPECT_EQ(backend_.launches().size(), 2u);
}

TEST_F(JobControllerTest, BackoffStartsOverAfterAnAttemptThatRanLong) {
  int64_t id = Submit(1000, 5, 0, {}, absl::Milliseconds(100));
  ASSERT_TRUE(Launched(1));
  backend_.Exit(AttemptDir(id, 1), 1);
  ASSERT_TRUE(Launched(2));
  EXPECT_THAT(store_->ListAttempts(id)->at(0).reason, ::testing::HasSubstr("in 100ms"));
  // Attempt 2 fails after 11 minutes of running: the count starts over (100ms, not 200ms).
  backend_.Report(AttemptDir(id, 2), {.phase = AttemptPhase::kExited,
                                      .exit_code = 1,
                                      .end_reason = "exited",
                                      .start_time = absl::Now() - absl::Minutes(11),
                                      .end_time = absl::Now()});
  ASSERT_TRUE(Launched(3));
  EXPECT_THAT(store_->ListAttempts(id)->at(1).reason, ::testing::HasSubstr("in 100ms"));
  backend_.Exit(AttemptDir(id, 3), 1);  // the first short failure since then
  ASSERT_TRUE(Launched(4));
  EXPECT_THAT(store_->ListAttempts(id)->at(2).reason, ::testing::HasSubstr("in 100ms"));
  backend_.Exit(AttemptDir(id, 4), 1);  // the second in a row
  ASSERT_TRUE(Launched(5));
  EXPECT_THAT(store_->ListAttempts(id)->at(3).reason, ::testing::HasSubstr("in 200ms"));
}

TEST_F(JobControllerTest, GangGetsOneLaunchWithTheContractPerTaskAndDistinctPorts) {
  int64_t tf = Submit(500, 0, 0, {{.role = "ps", .count = 1}, {.role = "worker", .count = 2}});
  ASSERT_TRUE(Launched(1));
  int64_t ddp = Submit(250, 0, 0, {{.count = 2}});
  ASSERT_TRUE(Launched(2));
  LaunchRequest a = backend_.launches()[0];
  LaunchRequest b = backend_.launches()[1];
  ASSERT_EQ(a.tasks.size(), 3u);
  EXPECT_TRUE(a.tasks[0].auxiliary);  // the parameter server
  EXPECT_FALSE(a.tasks[1].auxiliary);
  EXPECT_EQ(a.tasks[2].env.at("RANK"), "2");
  EXPECT_EQ(a.tasks[2].env.at("WORLD_SIZE"), "3");
  EXPECT_EQ(a.tasks[2].env.at("DLAB_TASK_ROLE"), "worker");
  EXPECT_THAT(a.tasks[2].env.at("TF_CONFIG"), ::testing::HasSubstr("\"127.0.0.1:30003\""));
  EXPECT_TRUE(a.log_path.ends_with("/attempt.log"));
  EXPECT_TRUE(a.tasks[1].log_path.ends_with("/task-1.log"));
  EXPECT_EQ(ReadFile(a.tasks[0].env.at("DLAB_HOSTFILE")).value_or(""), "127.0.0.1 slots=3\n");
  ASSERT_EQ(b.tasks.size(), 2u);
  // Ports 30000-30003 are reserved for the TF job: the DDP job gets the next one.
  EXPECT_EQ(b.tasks[1].env.at("MASTER_PORT"), "30004");
  EXPECT_FALSE(b.tasks[1].env.contains("TF_CONFIG"));
  auto attempts = store_->ListAttempts(tf);
  EXPECT_EQ(attempts->at(0).allocation.ports, (std::vector<int>{30000, 30001, 30002, 30003}));
  EXPECT_EQ(attempts->at(0).allocation.tasks.size(), 3u);
  auto log = controller_->LogPath(ddp, 0, 1);
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(log->ends_with("/task-1.log"));
  EXPECT_EQ(controller_->LogPath(ddp, 0, 2).status().code(), absl::StatusCode::kNotFound);
  // A failed task's gang reports which task failed; the job's reason says so.
  backend_.Report(
      b.attempt_dir,
      {.phase = AttemptPhase::kExited,
       .exit_code = 3,
       .end_reason = "exited",
       .failed_rank = 1,
       .tasks = {{.rank = 0, .exit_code = 143, .signal = "SIGTERM", .end_reason = "stopped"},
                 {.rank = 1, .exit_code = 3, .end_reason = "exited"}},
       .message = "task 1 exited with code 3; the other tasks were stopped",
       .end_time = absl::Now()});
  ASSERT_TRUE(Reaches(ddp, JobState::kFailed));
  auto job = store_->GetJob(ddp);
  EXPECT_EQ(job->reason, "task 1 exited with code 3; the other tasks were stopped");
  EXPECT_EQ(job->attempt_list[0].tasks.size(), 2u);
  EXPECT_EQ(job->attempt_list[0].tasks[0].end_reason, "stopped");
}

TEST_F(JobControllerTest, AJobThatFindsNoPortsWaitsQueuedUntilSomeAreFree) {
  // The node has 10 ports; a job with roles takes 1 + one per task: 4 here. Two such jobs hold
  // 8, so the third cannot be launched although its CPUs are free: it stays QUEUED (and counted
  // so) with the reason, and starts once a job ends and gives its ports back.
  std::vector<TaskGroup> roles = {{.role = "ps", .count = 1}, {.role = "worker", .count = 2}};
  int64_t first = Submit(100, 0, 0, roles);
  ASSERT_TRUE(Launched(1));
  Submit(100, 0, 0, roles);
  ASSERT_TRUE(Launched(2));
  int64_t third = Submit(100, 0, 0, roles);
  ASSERT_TRUE(Eventually([&] {
    return store_->GetJob(third)->reason.starts_with("waiting for ports");
  })) << store_->GetJob(third)->reason;
  EXPECT_EQ(State(third), JobState::kQueued);
  EXPECT_EQ(controller_->Usage(1).queued_jobs, 1);
  EXPECT_EQ(controller_->Usage(1).running_jobs, 2);
  backend_.Exit(AttemptDir(first, 1), 0);
  ASSERT_TRUE(Launched(3));
  EXPECT_EQ(backend_.launches()[2].job_id, third);
  EXPECT_EQ(controller_->Usage(1).queued_jobs, 0);
}

TEST_F(JobControllerTest, AnAttemptThatNeverStartedDoesNotCountAsARunTime) {
  // Queue estimates for jobs without max_runtime come from the mean run time of the tenant's
  // ended jobs. Job 1 runs 1,000 s; job 2's attempt ends without having started (its launch
  // failed): the mean stays 1,000 s, not 500.
  int64_t ran = Submit(2000);
  ASSERT_TRUE(Launched(1));
  absl::Time started = absl::Now();
  backend_.Report(AttemptDir(ran, 1), {.phase = AttemptPhase::kExited,
                                       .exit_code = 0,
                                       .end_reason = "exited",
                                       .start_time = started,
                                       .end_time = started + absl::Seconds(1000)});
  ASSERT_TRUE(Reaches(ran, JobState::kSucceeded));
  int64_t never = Submit(2000);
  ASSERT_TRUE(Launched(2));
  backend_.Report(AttemptDir(never, 1), {.phase = AttemptPhase::kExited,
                                         .exit_code = 1,
                                         .end_reason = "exec_failed",
                                         .end_time = absl::Now()});
  ASSERT_TRUE(Reaches(never, JobState::kFailed));
  Submit(2000);
  ASSERT_TRUE(Launched(3));
  absl::Time third_started = absl::Now();
  int64_t waiting = Submit(2000);
  auto forecast = controller_->Queue();
  ASSERT_EQ(forecast->jobs.size(), 1u);
  EXPECT_EQ(forecast->jobs[0].job_id, waiting);
  ASSERT_TRUE(forecast->jobs[0].estimated_start.has_value());
  double in_s = absl::ToDoubleSeconds(*forecast->jobs[0].estimated_start - third_started);
  EXPECT_NEAR(in_s, 1000, 60);
}

TEST_F(JobControllerTest, QueuedJobWaitsWithAReasonUntilResourcesFree) {
  int64_t first = Submit(2000);
  int64_t second = Submit(1000);
  ASSERT_TRUE(Launched(1));
  ASSERT_TRUE(Eventually(
      [&] { return store_->GetJob(second)->reason.starts_with("waiting for resources"); }));
  EXPECT_EQ(State(second), JobState::kQueued);
  EXPECT_EQ(store_->GetJob(second)->reason, "waiting for resources: needs cpus 1 (free 0)");
  backend_.Exit(AttemptDir(first, 1), 0);
  ASSERT_TRUE(Launched(2));
  EXPECT_EQ(backend_.launches()[1].job_id, second);
}

TEST_F(JobControllerTest, QueueViewersShareAForecastUntilTheQueueChanges) {
  int64_t running = Submit(2000);
  int64_t waiting = Submit(1000);
  ASSERT_TRUE(Launched(1));
  auto ids = [](const std::shared_ptr<const JobController::QueueForecast>& f) {
    std::vector<int64_t> out;
    for (const auto& v : f->jobs) out.push_back(v.job_id);
    return out;
  };
  auto first = controller_->Queue();
  EXPECT_EQ(ids(first), std::vector<int64_t>{waiting});
  EXPECT_EQ(controller_->Queue(), first);  // nothing changed: the same forecast
  int64_t later = Submit(1000);
  auto after_submit = controller_->Queue();
  EXPECT_NE(after_submit, first);
  EXPECT_GE(after_submit->time, first->time);
  EXPECT_EQ(ids(after_submit), (std::vector<int64_t>{waiting, later}));
  backend_.Exit(AttemptDir(running, 1), 0);  // both start: the queue is forecast again
  ASSERT_TRUE(Launched(3));
  EXPECT_TRUE(controller_->Queue()->jobs.empty());
}

TEST_F(JobControllerTest, CancelQueuedAndRunningJobs) {
  int64_t running = Submit(2000);
  int64_t queued = Submit(2000);
  ASSERT_TRUE(Launched(1));
  backend_.Run(AttemptDir(running, 1));
  ASSERT_TRUE(Reaches(running, JobState::kRunning));
  auto q = controller_->Cancel(queued);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, JobState::kCancelled);
  ASSERT_TRUE(controller_->Cancel(running).ok());
  // Only the running attempt is signalled (the reconcile may repeat it: cancels are idempotent).
  EXPECT_THAT(backend_.cancelled(), ::testing::AllOf(::testing::Not(::testing::IsEmpty()),
                                                     ::testing::Each(AttemptDir(running, 1))));
  backend_.Exit(AttemptDir(running, 1), 143, "cancelled");
  ASSERT_TRUE(Reaches(running, JobState::kCancelled));
  EXPECT_EQ(controller_->Cancel(running).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(controller_->Cancel(999).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobControllerTest, CancelWhileTheAttemptIsBeingLaunchedStillStopsIt) {
  backend_.SetGate(false);
  int64_t id = Submit();
  ASSERT_TRUE(Eventually([&] { return backend_.launching(); }));
  ASSERT_TRUE(controller_->Cancel(id).ok());  // nothing to signal yet
  EXPECT_TRUE(backend_.cancelled().empty());
  backend_.SetGate(true);
  ASSERT_TRUE(Eventually([&] { return backend_.cancelled().size() >= 1; }));
  EXPECT_EQ(backend_.cancelled()[0], AttemptDir(id, 1));
  backend_.Exit(AttemptDir(id, 1), 143, "cancelled");
  ASSERT_TRUE(Reaches(id, JobState::kCancelled));
}

TEST_F(JobControllerTest, CommandThatSucceedsDespiteACancelIsSucceeded) {
  int64_t id = Submit();
  ASSERT_TRUE(Launched(1));
  backend_.Run(AttemptDir(id, 1));
  ASSERT_TRUE(Reaches(id, JobState::kRunning));
  ASSERT_TRUE(controller_->Cancel(id).ok());
  backend_.Exit(AttemptDir(id, 1), 0);  // it finished before the signal arrived
  ASSERT_TRUE(Reaches(id, JobState::kSucceeded));
}

TEST_F(JobControllerTest, RestartedControllerReattachesAndRequeuesUnlaunched) {
  int64_t running = Submit(1000);
  ASSERT_TRUE(Launched(1));
  backend_.Run(AttemptDir(running, 1));
  ASSERT_TRUE(Reaches(running, JobState::kRunning));
  int64_t unlaunched = Submit(1000);
  ASSERT_TRUE(Launched(2));
  controller_.reset();                         // dlabd dies
  backend_.Forget(AttemptDir(unlaunched, 1));  // as if it died before spawning the supervisor
  backend_.SetListener(nullptr);
  StartController();
  ASSERT_TRUE(Launched(3));
  EXPECT_EQ(backend_.launches()[2].attempt_dir, AttemptDir(unlaunched, 2));  // relaunched
  EXPECT_EQ(State(running), JobState::kRunning);                             // reattached
  backend_.Exit(AttemptDir(running, 1), 0);
  ASSERT_TRUE(Reaches(running, JobState::kSucceeded));
  EXPECT_EQ(store_->GetJob(running)->attempts, 1);
}

TEST_F(JobControllerTest, AfterARestartAVictimIsChosenByTheWorkSinceItsLatestCheckpoint) {
  // Two running jobs, old started 100 s ago and checkpointed 10 s ago, young started 50 s ago
  // and never checkpointed. A restarted dlabd must still know old loses only 10 s if preempted
  // (young would lose 50 s), and stop old for the high-priority job.
  auto [old_job, young_job] = OldAndYoungJobs();
  SetCheckpoint(old_job, {.id = 1, .step = 10, .path = "/nonexistent"},
                absl::Now() - absl::Seconds(10));
  RestartController(kPreemptAtOnce);
  SubmitUrgent();
  ASSERT_TRUE(Eventually([&] { return !backend_.cancelled().empty(); }));
  EXPECT_EQ(backend_.cancelled(), std::vector<std::string>{AttemptDir(old_job, 1)});
}

TEST_F(JobControllerTest, AfterARestartAJobBeingPreemptedIsTheVictimAgain) {
  // young (started 50 s ago) is being preempted for urgent when dlabd restarts; old (started
  // 100 s ago) has checkpointed 1 s ago since. The restarted dlabd must not stop old as well:
  // young has nothing more to lose, so urgent waits for it.
  auto [old_job, young_job] = OldAndYoungJobs();
  int64_t urgent = SubmitUrgent();
  ASSERT_TRUE(Reaches(young_job, JobState::kPreempted));
  SetCheckpoint(old_job, {.id = 1, .step = 10, .path = "/nonexistent"}, absl::Now());
  RestartController(kPreemptAtOnce);  // while young is still stopping
  ASSERT_TRUE(Eventually([&] {
    return absl::StrContains(store_->GetJob(urgent)->reason,
                             absl::StrCat("preempted job ", young_job, " to stop"));
  })) << store_->GetJob(urgent)->reason;
  for (const std::string& dir : backend_.cancelled()) EXPECT_NE(dir, AttemptDir(old_job, 1));
  auto events = store_->ListEvents(young_job);
  EXPECT_EQ(std::count_if(events->begin(), events->end(),
                          [](const EventRecord& e) { return e.to == JobState::kPreempted; }),
            1);                                  // chosen again, not preempted twice
  backend_.Exit(AttemptDir(young_job, 1), 143);  // young stops; urgent takes its room
  ASSERT_TRUE(Launched(3));
  EXPECT_EQ(backend_.launches()[2].job_id, urgent);
  EXPECT_EQ(State(young_job), JobState::kQueued);
}

TEST_F(JobControllerTest, AJobWhoseStartTheStoreRefusedIsStartedByALaterCycle) {
  // The store refuses to record the start (QUEUED -> STARTING) once: the job stays queued,
  // holding nothing, and a later cycle starts it.
  refusing_->Refuse(JobState::kQueued, JobState::kStarting);
  int64_t id = Submit();
  ASSERT_TRUE(Launched(1));
  EXPECT_EQ(refusing_->refused(), 1);
  EXPECT_EQ(backend_.launches()[0].job_id, id);
  EXPECT_EQ(backend_.launches()[0].attempt, 1);
  EXPECT_EQ(controller_->Usage(1).queued_jobs, 0);
  EXPECT_EQ(controller_->Usage(1).running_jobs, 1);
}

TEST_F(JobControllerTest, APreemptionTheStoreRefusedIsTriedAgain) {
  // The store refuses to record young's preemption once: young runs on, and a later cycle
  // preempts it again for urgent, which starts once young has stopped.
  auto [old_job, young_job] = OldAndYoungJobs();
  refusing_->Refuse(JobState::kRunning, JobState::kPreempted);
  int64_t urgent = SubmitUrgent();
  ASSERT_TRUE(Reaches(young_job, JobState::kPreempted));
  EXPECT_EQ(refusing_->refused(), 1);
  ASSERT_TRUE(Eventually([&] { return !backend_.cancelled().empty(); }));  // stopped after
  EXPECT_EQ(backend_.cancelled(), std::vector<std::string>{AttemptDir(young_job, 1)});
  backend_.Exit(AttemptDir(young_job, 1), 143);
  ASSERT_TRUE(Launched(3));
  EXPECT_EQ(backend_.launches()[2].job_id, urgent);
  EXPECT_EQ(State(old_job), JobState::kRunning);
}

TEST_F(JobControllerTest, APreemptedJobsReasonSaysHowItStoppedNotThatAUserCancelledIt) {
  // The backend reports an attempt dlab stopped as "cancelled", whoever asked.
  auto [old_job, young_job] = OldAndYoungJobs();
  int64_t urgent = SubmitUrgent();
  ASSERT_TRUE(Reaches(young_job, JobState::kPreempted));
  backend_.Exit(AttemptDir(young_job, 1), 0, "cancelled");
  ASSERT_TRUE(Reaches(young_job, JobState::kQueued));
  auto events = store_->ListEvents(young_job);
  ASSERT_TRUE(events.ok());
  auto requeued = std::find_if(events->begin(), events->end(), [](const EventRecord& e) {
    return e.from == JobState::kPreempted && e.to == JobState::kQueued;
  });
  ASSERT_NE(requeued, events->end());
  EXPECT_EQ(requeued->reason,
            absl::StrCat("preempted for job ", urgent,
                         " (priority 10 > 0); exited with code 0 after SIGTERM; requeued to "
                         "resume from its latest checkpoint"));
  EXPECT_EQ(State(old_job), JobState::kRunning);
}

TEST_F(JobControllerTest, ALaunchFailureTheStoreRefusedToRecordIsRecordedLater) {
  // The attempt cannot be launched (no such workdir) and the store refuses to record that once:
  // the next reconcile records it, and the job's CPUs are free again for the next job.
  refusing_->Refuse(JobState::kStarting, JobState::kFailed);
  JobSpec spec{.name = "w", .command = {"true"}, .workdir = "no/such/dir"};
  spec.resources = {.cpu_millis = 2000, .memory_bytes = 1 << 20};
  auto r = controller_->Submit(spec, "", "");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(Reaches(r->job.id, JobState::kFailed));
  EXPECT_EQ(refusing_->refused(), 1);
  EXPECT_EQ(store_->GetJob(r->job.id)->reason,
            "workdir 'no/such/dir' is not a directory in the code snapshot");
  int64_t next = Submit(2000);
  ASSERT_TRUE(Launched(1));
  EXPECT_EQ(backend_.launches()[0].job_id, next);
}

// A job of the tenant in the store whose attempts ran `runs` seconds each on GPU 0, one after
// the other from `start`, left in `state`.
int64_t JobThatRan(Store& store, std::vector<double> runs, JobState state, int64_t tenant = 1,
                   absl::Time start = absl::Now() - absl::Hours(24)) {
  JobSpec spec{.name = "past", .command = {"true"}};
  spec.resources = {.cpu_millis = 1000, .memory_bytes = 1 << 20, .gpus = 1};
  absl::Time t = start;
  int64_t id = store.CreateJob({.tenant_id = tenant, .spec = spec, .submit_time = t})->job.id;
  Allocation on_gpu0{.cpu_millis = 1000, .memory_bytes = 1 << 20, .gpus = {0}};
  on_gpu0.tasks = {{.cpu_millis = 1000, .memory_bytes = 1 << 20, .gpus = {0}}};
  for (size_t i = 0; i < runs.size(); ++i) {
    int number = static_cast<int>(i) + 1;
    bool last = i + 1 == runs.size();
    JobState to = last ? state : JobState::kQueued;
    EXPECT_TRUE(store
                    .Transition({.job_id = id,
                                 .from = JobState::kQueued,
                                 .to = JobState::kStarting,
                                 .time = t,
                                 .new_attempt = AttemptRecord{.number = number,
                                                              .allocation = on_gpu0,
                                                              .create_time = t}})
                    .ok());
    EXPECT_TRUE(store
                    .Transition({.job_id = id,
                                 .from = JobState::kStarting,
                                 .to = JobState::kRunning,
                                 .time = t,
                                 .attempt_update = AttemptUpdate{.number = number,
                                                                 .state = JobState::kRunning,
                                                                 .start_time = t}})
                    .ok());
    t += absl::Seconds(runs[i]);
    EXPECT_TRUE(store
                    .Transition({.job_id = id,
                                 .from = JobState::kRunning,
                                 .to = to,
                                 .time = t,
                                 .attempt_update =
                                     AttemptUpdate{.number = number, .state = to, .end_time = t}})
                    .ok());
  }
  return id;
}

TEST_F(JobControllerTest, GittinsLearnsTheSizesOfJobsThatEndedBeforeDlabdStarted) {
  // Past jobs of the tenant all ran 5,000 s on their one GPU. A job that has 4,000 GPU-s from
  // an earlier attempt is then nearly done, and gittins starts it before a fresh one; with one
  // past job too few (gittins.min_samples 5), the prior puts the fresh job first.
  for (int past : {5, 4}) {
    controller_.reset();
    store_ = *Store::OpenSqlite((dir_ / absl::StrCat("gittins-", past, ".db")).string());
    for (int i = 0; i < past; ++i) JobThatRan(*store_, {5000}, JobState::kSucceeded);
    int64_t resumed = JobThatRan(*store_, {4000}, JobState::kQueued);
    int64_t fresh = JobThatRan(*store_, {}, JobState::kQueued);
    size_t before = backend_.launches().size();
    StartController({.policy = "gittins", .params = {{"gittins.min_samples", "5"}}});
    ASSERT_TRUE(Launched(before + 1));
    EXPECT_EQ(backend_.launches()[before].job_id, past == 5 ? resumed : fresh) << past;
  }
}

TEST_F(JobControllerTest, FairShareRemembersWhoUsedTheGpuBeforeDlabdRestarted) {
  // Tenant 1's job held the GPU for the hour before dlabd started (it ended a minute ago);
  // tenant 2 used nothing. One queued job each, tenant 1's submitted first: fair share starts
  // tenant 2's, as it would have had dlabd run all along. (Forgetting the hour, the two tenants
  // tie and tenant 1's job, first in line, would start.)
  controller_.reset();
  store_ = *Store::OpenSqlite((dir_ / "fair.db").string());
  JobThatRan(*store_, {3600}, JobState::kSucceeded, 1, absl::Now() - absl::Seconds(3660));
  int64_t first = JobThatRan(*store_, {}, JobState::kQueued, 1);
  int64_t second = JobThatRan(*store_, {}, JobState::kQueued, 2);
  StartController({.policy = "fair-share"});
  ASSERT_TRUE(Launched(1));
  EXPECT_EQ(backend_.launches()[0].job_id, second);
  EXPECT_EQ(State(first), JobState::kQueued);
}

TEST_F(JobControllerTest, LostSupervisorFailsTheAttemptAndIsRetried) {
  int64_t id = Submit();
  ASSERT_TRUE(Launched(1));
  backend_.Report(AttemptDir(id, 1), {.phase = AttemptPhase::kLost});
  ASSERT_TRUE(Launched(2));  // an infrastructure failure: retried although max_restarts is 0
  auto first = store_->ListAttempts(id)->at(0);
  EXPECT_EQ(first.state, JobState::kFailed);
  EXPECT_EQ(first.failure, "infrastructure");
  EXPECT_THAT(first.reason, ::testing::HasSubstr("supervisor is gone"));
}

TEST_F(JobControllerTest, RefusesWhatCanNeverRunAndUnknownSnapshots) {
  JobSpec spec{.name = "big", .command = {"true"}};
  spec.resources.gpus = 2;
  EXPECT_EQ(controller_->Submit(spec, "", "").status().message(),
            "resources.gpus: 2 GPUs requested, but the largest node has 1");
  spec.resources.gpus = 0;
  EXPECT_EQ(controller_->Submit(spec, "sha256:" + std::string(64, 'a'), "").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(JobControllerTest, WorkdirMissingFromSnapshotFailsTheLaunch) {
  JobSpec spec{.name = "w", .command = {"true"}, .workdir = "no/such/dir"};
  spec.resources.memory_bytes = 1 << 20;
  auto r = controller_->Submit(spec, "", "");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(Reaches(r->job.id, JobState::kFailed));
  EXPECT_EQ(store_->GetJob(r->job.id)->reason,
            "workdir 'no/such/dir' is not a directory in the code snapshot");
  EXPECT_TRUE(backend_.launches().empty());
}

}  // namespace
}  // namespace dlab
