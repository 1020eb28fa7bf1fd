#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/testing/temp_dir.h"
#include "store/store.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.path();
    store_ = Open();
  }
  void TearDown() override { store_.reset(); }
  std::unique_ptr<Store> Open() {
    auto s = Store::OpenSqlite((dir_ / "dlab.db").string());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  NewJob Job(const std::string& name, int priority = 0,
             std::map<std::string, std::string> labels = {}) {
    NewJob j;
    j.spec.name = name;
    j.spec.command = {"true"};
    j.spec.priority = priority;
    j.spec.labels = std::move(labels);
    j.submit_time = absl::Now();
    return j;
  }

  testing::TempDir temp_;
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, CreateAndGetJobWithSubmittedEvent) {
  auto created = store_->CreateJob(Job("a", 0, {{"project", "mnist"}}));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  auto job = store_->GetJob(created->job.id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->spec.name, "a");
  EXPECT_EQ(job->state, JobState::kQueued);
  EXPECT_EQ(job->spec.labels.at("project"), "mnist");
  auto events = store_->ListEvents(job->id);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_FALSE((*events)[0].from.has_value());
  EXPECT_EQ((*events)[0].to, JobState::kQueued);
  EXPECT_EQ(store_->GetJob(999).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, IdempotencyKeyReturnsTheFirstJob) {
  NewJob j = Job("a");
  j.idempotency_key = "key-1";
  auto first = store_->CreateJob(j);
  auto second = store_->CreateJob(j);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_TRUE(first->created);
  EXPECT_FALSE(second->created);
  EXPECT_EQ(first->job.id, second->job.id);
  auto all = store_->ListJobs({});
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(SqliteStoreTest, ListFiltersByStateAndLabelsWithCursor) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        store_->CreateJob(Job("j" + std::to_string(i), 0, {{"team", i % 2 ? "odd" : "even"}}))
            .ok());
  }
  auto evens = store_->ListJobs({.labels = {{"team", "even"}}});
  ASSERT_TRUE(evens.ok());
  ASSERT_EQ(evens->size(), 3u);
  EXPECT_EQ((*evens)[0].spec.name, "j4");  // newest first
  auto page1 = store_->ListJobs({.limit = 2});
  ASSERT_EQ(page1->size(), 2u);
  auto page2 = store_->ListJobs({.before_id = page1->back().id, .limit = 2});
  ASSERT_EQ(page2->size(), 2u);
  EXPECT_LT((*page2)[0].id, page1->back().id);
  auto running = store_->ListJobs({.states = {JobState::kRunning}});
  EXPECT_TRUE(running->empty());
}

TEST_F(SqliteStoreTest, TransitionIsCompareAndSetAndRecordsEvents) {
  int64_t id = store_->CreateJob(Job("a"))->job.id;
  AttemptRecord attempt;
  attempt.number = 1;
  attempt.allocation = {.cpu_millis = 500, .memory_bytes = 1 << 20, .gpus = {1, 3}};
  attempt.dir = "/tmp/x";
  attempt.create_time = absl::Now();
  ASSERT_TRUE(store_
                  ->Transition({.job_id = id,
                                .from = JobState::kQueued,
                                .to = JobState::kStarting,
                                .reason = "scheduled",
                                .time = absl::Now(),
                                .new_attempt = attempt})
                  .ok());
  // A stale transition from QUEUED is refused.
  auto stale = store_->Transition(
      {.job_id = id, .from = JobState::kQueued, .to = JobState::kCancelled, .time = absl::Now()});
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(
      store_
          ->Transition(
              {.job_id = id,
               .from = JobState::kStarting,
               .to = JobState::kRunning,
               .reason = "started",
               .time = absl::Now(),
               .attempt_update = AttemptUpdate{.number = 1,
                                               .state = JobState::kRunning,
                                               .start_time = absl::Now(),
                                               .limit_notes = std::vector<std::string>{"cpu: ok"}}})
          .ok());
  ASSERT_TRUE(store_
                  ->Transition({.job_id = id,
                                .from = JobState::kRunning,
                                .to = JobState::kFailed,
                                .reason = "exit code 3",
                                .time = absl::Now(),
                                .exit_code = 3})
                  .ok());
  auto job = store_->GetJob(id);
  EXPECT_EQ(job->state, JobState::kFailed);
  EXPECT_EQ(job->exit_code, 3);
  EXPECT_EQ(job->attempts, 1);
  EXPECT_TRUE(job->start_time.has_value());
  EXPECT_TRUE(job->end_time.has_value());
  auto attempts = store_->ListAttempts(id);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].allocation.gpus, (std::vector<int>{1, 3}));
  EXPECT_EQ((*attempts)[0].limit_notes, (std::vector<std::string>{"cpu: ok"}));
  EXPECT_EQ((*attempts)[0].state, JobState::kRunning);
  auto events = store_->ListEvents(id);
  ASSERT_EQ(events->size(), 4u);
  EXPECT_EQ((*events)[3].reason, "exit code 3");
  auto counts = store_->CountByState();
  EXPECT_EQ(counts->at(JobState::kFailed), 1);
  EXPECT_EQ(counts->at(JobState::kQueued), 0);
}

TEST_F(SqliteStoreTest, AttemptDetailsRoundTrip) {
  NewJob j = Job("gang");
  j.spec.task_groups = {TaskGroup{.role = "worker", .count = 2}};
  int64_t id = store_->CreateJob(j)->job.id;
  EXPECT_EQ(store_->GetJob(id)->spec.task_groups, j.spec.task_groups);
  AttemptRecord attempt{.number = 1, .dir = "/d", .create_time = absl::Now()};
  attempt.allocation = {.cpu_millis = 2000,
                        .memory_bytes = 2 << 20,
                        .gpus = {0, 1},
                        .tasks = {{.cpu_millis = 1000, .memory_bytes = 1 << 20, .gpus = {1}},
                                  {.cpu_millis = 1000, .memory_bytes = 1 << 20, .gpus = {0}}},
                        .ports = {40000}};
  attempt.resumed_from = CheckpointRef{.id = 4, .step = 100, .path = "/c/step-100"};
  ASSERT_TRUE(store_
                  ->Transition({.job_id = id,
                                .from = JobState::kQueued,
                                .to = JobState::kStarting,
                                .time = absl::Now(),
                                .new_attempt = attempt})
                  .ok());
  std::vector<TaskEnd> ends = {
      {.rank = 0, .role = "worker", .exit_code = 1, .end_reason = "exited"},
      {.rank = 1, .role = "worker", .role_index = 1, .signal = "SIGTERM", .end_reason = "stopped"}};
  ASSERT_TRUE(store_
                  ->UpdateAttempt(id, {.number = 1,
                                       .state = JobState::kFailed,
                                       .failure = "user",
                                       .restart_counted = true,
                                       .tasks = ends})
                  .ok());
  store_ = Open();  // survives reopening
  auto attempts = store_->ListAttempts(id);
  ASSERT_EQ(attempts->size(), 1u);
  const AttemptRecord& a = (*attempts)[0];
  EXPECT_EQ(a.allocation.tasks.size(), 2u);
  EXPECT_EQ(a.allocation.tasks[1].gpus, std::vector<int>{0});
  EXPECT_EQ(a.allocation.ports, std::vector<int>{40000});
  EXPECT_EQ(a.resumed_from, attempt.resumed_from);
  EXPECT_EQ(a.failure, "user");
  EXPECT_TRUE(a.restart_counted);
  EXPECT_EQ(a.tasks, ends);
}

TEST_F(SqliteStoreTest, AttemptsSinceListsWhatRanFromThenOn) {
  absl::Time now = absl::Now();
  // (start, end) of one attempt each; unset start: never started; unset end: running.
  std::vector<std::pair<std::optional<absl::Duration>, std::optional<absl::Duration>>> runs = {
      {absl::Hours(3), absl::Hours(2)},   // ended before `since`
      {absl::Hours(2), absl::Hours(1)},   // ended after
      {absl::Minutes(30), std::nullopt},  // running
      {std::nullopt, std::nullopt}};      // created, never started
  std::vector<int64_t> ids;
  for (const auto& [ago_start, ago_end] : runs) {
    int64_t id = store_->CreateJob(Job("j"))->job.id;
    ids.push_back(id);
    AttemptRecord attempt{.number = 1, .dir = "/d", .create_time = now - absl::Hours(4)};
    attempt.allocation = {.cpu_millis = 1000, .memory_bytes = 1 << 20, .gpus = {0}};
    ASSERT_TRUE(store_
                    ->Transition({.job_id = id,
                                  .from = JobState::kQueued,
                                  .to = JobState::kStarting,
                                  .time = attempt.create_time,
                                  .new_attempt = attempt})
                    .ok());
    AttemptUpdate update{.number = 1};
    if (ago_start) update.start_time = now - *ago_start;
    if (ago_end) update.end_time = now - *ago_end;
    ASSERT_TRUE(store_->UpdateAttempt(id, update).ok());
  }
  auto spans = store_->AttemptsSince(now - absl::Minutes(90));
  ASSERT_TRUE(spans.ok()) << spans.status();
  ASSERT_EQ(spans->size(), 2u);
  EXPECT_EQ((*spans)[0].job_id, ids[1]);
  EXPECT_EQ((*spans)[0].tenant_id, 1);
  EXPECT_EQ((*spans)[0].allocation.gpus, std::vector<int>{0});
  EXPECT_EQ(absl::ToUnixMicros((*spans)[0].start_time), absl::ToUnixMicros(now - absl::Hours(2)));
  ASSERT_TRUE((*spans)[0].end_time.has_value());
  EXPECT_EQ(absl::ToUnixMicros(*(*spans)[0].end_time), absl::ToUnixMicros(now - absl::Hours(1)));
  EXPECT_EQ((*spans)[1].job_id, ids[2]);
  EXPECT_FALSE((*spans)[1].end_time.has_value());
}

TEST_F(SqliteStoreTest, ActiveJobsInQueueOrderAndDataSurvivesReopen) {
  int64_t low = store_->CreateJob(Job("low", 0))->job.id;
  int64_t high = store_->CreateJob(Job("high", 5))->job.id;
  int64_t done = store_->CreateJob(Job("done", 9))->job.id;
  ASSERT_TRUE(store_
                  ->Transition({.job_id = done,
                                .from = JobState::kQueued,
                                .to = JobState::kCancelled,
                                .time = absl::Now()})
                  .ok());
  store_.reset();
  store_ = Open();
  auto active = store_->ActiveJobs();
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 2u);
  EXPECT_EQ((*active)[0].id, high);
  EXPECT_EQ((*active)[1].id, low);
}

TEST_F(SqliteStoreTest, SetReasonsUpdatesEveryQueuedJobNamedAndSkipsTheOthers) {
  int64_t a = store_->CreateJob(Job("a"))->job.id;
  int64_t b = store_->CreateJob(Job("b"))->job.id;
  int64_t c = store_->CreateJob(Job("c"))->job.id;
  int64_t gone = store_->CreateJob(Job("gone"))->job.id;
  ASSERT_TRUE(store_
                  ->Transition({.job_id = gone,
                                .from = JobState::kQueued,
                                .to = JobState::kCancelled,
                                .reason = "cancelled by user before it started"})
                  .ok());
  ASSERT_EQ(store_->GetJob(a)->reason, "submitted");  // cached, so the update must drop it
  ASSERT_TRUE(store_
                  ->SetReasons({{a, "waiting for 2 GPUs"},
                                {b, "behind job 1"},
                                {gone, "waiting for ports"},
                                {999, "x"}})
                  .ok());
  EXPECT_EQ(store_->GetJob(a)->reason, "waiting for 2 GPUs");
  EXPECT_EQ(store_->GetJob(b)->reason, "behind job 1");
  EXPECT_EQ(store_->GetJob(c)->reason, "submitted");
  // A job that left the queue meanwhile keeps the reason its transition gave.
  EXPECT_EQ(store_->GetJob(gone)->reason, "cancelled by user before it started");
  EXPECT_TRUE(store_->SetReasons({}).ok());
  store_.reset();
  store_ = Open();
  EXPECT_EQ(store_->GetJob(b)->reason, "behind job 1");
  EXPECT_EQ(store_->ListEvents(a)->size(), 1u) << "a reason is not an event";
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabase) {
  store_.reset();
  std::ofstream(dir_ / "junk.db")
      << "this is not sqlite, just text that is long enough to matter....";
  auto s = Store::OpenSqlite((dir_ / "junk.db").string());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("junk.db"), std::string::npos);
}

}  // namespace
}  // namespace dlab
