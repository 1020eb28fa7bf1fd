// SQLite implementation of Store: one connection (a SqliteDb) in WAL mode with synchronous=FULL,
// guarded by a mutex; prepared statements are cached per SQL text, and GetJob's records in
// memory until the job is written again. Times are stored as unix
// microseconds.
#include <sqlite3.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "common/job_spec.h"
#include "nlohmann/json.hpp"
#include "store/dlab_db.h"
#include "store/sqlite_db.h"
#include "store/store.h"

namespace dlab {
namespace {

using nlohmann::json;

constexpr char kJobColumns[] =
    "id, spec, snapshot, state, reason, submit_time, update_time, start_time, end_time, "
    "exit_code, attempts, cancel_requested, COALESCE(idempotency_key, ''), tenant_id, owner";

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

std::string StateText(JobState s) { return std::string(JobStateName(s)); }

JobState StateFrom(const std::string& text) {
  auto s = ParseJobState(text);
  DLAB_CHECK(s.has_value());
  return *s;
}

json AllocationToJson(const Allocation& a) {
  json tasks = json::array();
  for (const TaskAllocation& t : a.tasks) {
    tasks.push_back({{"cpu_millis", t.cpu_millis},
                     {"memory_bytes", t.memory_bytes},
                     {"gpus", t.gpus},
                     {"node", t.node}});
  }
  return {{"cpu_millis", a.cpu_millis},
          {"memory_bytes", a.memory_bytes},
          {"gpus", a.gpus},
          {"tasks", tasks},
          {"ports", a.ports}};
}

Allocation AllocationFromJson(const std::string& text) {
  json j = json::parse(text);
  Allocation a;
  a.cpu_millis = j.at("cpu_millis").get<int64_t>();
  a.memory_bytes = j.at("memory_bytes").get<int64_t>();
  a.gpus = j.at("gpus").get<std::vector<int>>();
  for (const json& t : j.value("tasks", json::array())) {
    a.tasks.push_back({.cpu_millis = t.at("cpu_millis").get<int64_t>(),
                       .memory_bytes = t.at("memory_bytes").get<int64_t>(),
                       .gpus = t.at("gpus").get<std::vector<int>>(),
                       .node = t.value("node", 0)});
  }
  a.ports = j.value("ports", std::vector<int>{});
  return a;
}

json TasksToJson(const std::vector<TaskEnd>& tasks) {
  json out = json::array();
  for (const TaskEnd& t : tasks) {
    out.push_back({{"rank", t.rank},
                   {"role", t.role},
                   {"role_index", t.role_index},
                   {"exit_code", t.exit_code ? json(*t.exit_code) : json(nullptr)},
                   {"signal", t.signal},
                   {"end_reason", t.end_reason}});
  }
  return out;
}

// The details column: fields added after the first schema.
void DetailsFromJson(const std::string& text, AttemptRecord* a) {
  json j = json::parse(text);
  a->failure = j.value("failure", "");
  a->restart_counted = j.value("restart_counted", false);
  if (j.contains("resumed_from")) {
    const json& r = j["resumed_from"];
    a->resumed_from = CheckpointRef{.id = r.value("id", int64_t{0}),
                                    .step = r.value("step", int64_t{0}),
                                    .path = r.value("path", "")};
  }
  for (const json& t : j.value("tasks", json::array())) {
    TaskEnd end{.rank = t.value("rank", 0),
                .role = t.value("role", ""),
                .role_index = t.value("role_index", 0),
                .signal = t.value("signal", ""),
                .end_reason = t.value("end_reason", "")};
    if (t.contains("exit_code") && t["exit_code"].is_number()) end.exit_code = t["exit_code"];
    a->tasks.push_back(std::move(end));
  }
}

json DetailsToJson(const AttemptRecord& a) {
  json j = json::object();
  if (!a.failure.empty()) j["failure"] = a.failure;
  if (a.restart_counted) j["restart_counted"] = true;
  if (a.resumed_from) {
    j["resumed_from"] = {
        {"id", a.resumed_from->id}, {"step", a.resumed_from->step}, {"path", a.resumed_from->path}};
  }
  if (!a.tasks.empty()) j["tasks"] = TasksToJson(a.tasks);
  return j;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  absl::StatusOr<CreateJobResult> CreateJob(const NewJob& job) override {
    std::lock_guard lock(mu_);
    if (!job.idempotency_key.empty()) {
      auto existing = FindByKeyLocked(job.idempotency_key);
      if (existing.ok()) return CreateJobResult{*std::move(existing), false};
      if (!absl::IsNotFound(existing.status())) return existing.status();
    }
    SqliteDb::Transaction tx(db_.get());
    if (auto s = tx.Begin(); !s.ok()) return s;
    {
      SqlStmt st = Prepare(
          "INSERT INTO jobs (name, spec, snapshot, state, reason, priority, submit_time, "
          "update_time, idempotency_key, tenant_id, owner) "
          "VALUES (?, ?, ?, 'QUEUED', 'submitted', ?, ?, ?, ?, ?, ?)");
      st.Bind(1, job.spec.name).Bind(2, JobSpecToJson(job.spec).dump()).Bind(3, job.snapshot);
      st.Bind(4, static_cast<int64_t>(job.spec.priority))
          .Bind(5, ToMicros(job.submit_time))
          .Bind(6, ToMicros(job.submit_time));
      if (job.idempotency_key.empty()) {
        st.BindNull(7);
      } else {
        st.Bind(7, job.idempotency_key);
      }
      st.Bind(8, job.tenant_id).Bind(9, job.owner);
      if (st.Step() != SQLITE_DONE) return Error("insert job");
    }
    int64_t id = db_->LastInsertRowid();
    for (const auto& [key, value] : job.spec.labels) {
      SqlStmt st = Prepare("INSERT INTO job_labels (job_id, key, value) VALUES (?, ?, ?)");
      st.Bind(1, id).Bind(2, key).Bind(3, value);
      if (st.Step() != SQLITE_DONE) return Error("insert label");
    }
    if (auto s =
            InsertEventLocked(id, job.submit_time, std::nullopt, JobState::kQueued, "submitted");
        !s.ok()) {
      return s;
    }
    if (auto s = tx.Commit(); !s.ok()) return s;
    auto record = GetJobLocked(id);
    if (!record.ok()) return record.status();
    return CreateJobResult{*std::move(record), true};
  }

  absl::StatusOr<JobRecord> GetJob(int64_t id) override {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(id); it != cache_.end()) return it->second;
    auto job = GetJobLocked(id);
    if (job.ok()) {
      if (cache_.size() >= kCacheSize) cache_.erase(cache_.begin());
      cache_.emplace(id, *job);
    }
    return job;
  }

  absl::StatusOr<std::vector<JobRecord>> ListJobs(const JobFilter& filter) override {
    if (filter.labels.size() > 64 || filter.states.size() > 64) {
      return absl::InvalidArgumentError("too many filters");
    }
    std::string sql = absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE 1=1");
    if (filter.tenant_id > 0) absl::StrAppend(&sql, " AND tenant_id = ?");
    if (!filter.owner.empty()) absl::StrAppend(&sql, " AND owner = ?");
    if (filter.before_id > 0) absl::StrAppend(&sql, " AND id < ?");
    if (!filter.states.empty()) {
      std::vector<std::string> marks(filter.states.size(), "?");
      absl::StrAppend(&sql, " AND state IN (", absl::StrJoin(marks, ","), ")");
    }
    for (size_t i = 0; i < filter.labels.size(); ++i) {
      absl::StrAppend(&sql,
                      " AND id IN (SELECT job_id FROM job_labels WHERE key = ? AND value = ?)");
    }
    absl::StrAppend(&sql, " ORDER BY id DESC LIMIT ?");
    std::lock_guard lock(mu_);
    SqlStmt st = Prepare(sql);
    int i = 1;
    if (filter.tenant_id > 0) st.Bind(i++, filter.tenant_id);
    if (!filter.owner.empty()) st.Bind(i++, filter.owner);
    if (filter.before_id > 0) st.Bind(i++, filter.before_id);
    for (JobState s : filter.states) st.Bind(i++, StateText(s));
    for (const auto& [key, value] : filter.labels) {
      st.Bind(i, key).Bind(i + 1, value);
      i += 2;
    }
    st.Bind(i, static_cast<int64_t>(filter.limit));
    return ReadJobsLocked(st);
  }

  absl::StatusOr<std::vector<JobRecord>> ActiveJobs() override {
    std::lock_guard lock(mu_);
    SqlStmt st =
        Prepare(absl::StrCat("SELECT ", kJobColumns,
                             " FROM jobs WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED') "
                             "ORDER BY priority DESC, submit_time, id"));
    return ReadJobsLocked(st);
  }

  absl::StatusOr<std::vector<AttemptRecord>> ListAttempts(int64_t job_id) override {
    std::lock_guard lock(mu_);
    return ListAttemptsLocked(job_id);
  }

  absl::StatusOr<std::vector<AttemptRecord>> ListAttemptsLocked(int64_t job_id) {
    SqlStmt st = Prepare(
        "SELECT number, state, reason, allocation, dir, create_time, start_time, end_time, "
        "exit_code, limit_notes, details FROM attempts WHERE job_id = ? ORDER BY number");
    st.Bind(1, job_id);
    std::vector<AttemptRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      AttemptRecord a;
      a.job_id = job_id;
      a.number = static_cast<int>(st.Int(0));
      a.state = StateFrom(st.Text(1));
      a.reason = st.Text(2);
      a.allocation = AllocationFromJson(st.Text(3));
      a.dir = st.Text(4);
      a.create_time = FromMicros(st.Int(5));
      a.start_time = st.OptTime(6);
      a.end_time = st.OptTime(7);
      a.exit_code = st.OptInt(8);
      a.limit_notes = json::parse(st.Text(9)).get<std::vector<std::string>>();
      DetailsFromJson(st.Text(10), &a);
      out.push_back(std::move(a));
    }
    if (rc != SQLITE_DONE) return Error("list attempts");
    return out;
  }

  absl::StatusOr<std::vector<AttemptSpan>> AttemptsSince(absl::Time since) override {
    std::lock_guard lock(mu_);
    SqlStmt st = Prepare(
        "SELECT a.job_id, j.tenant_id, a.allocation, a.start_time, a.end_time FROM attempts a "
        "JOIN jobs j ON j.id = a.job_id WHERE a.start_time IS NOT NULL "
        "AND (a.end_time IS NULL OR a.end_time > ?) ORDER BY a.start_time");
    st.Bind(1, ToMicros(since));
    std::vector<AttemptSpan> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      out.push_back({.job_id = st.Int(0),
                     .tenant_id = st.Int(1),
                     .allocation = AllocationFromJson(st.Text(2)),
                     .start_time = FromMicros(st.Int(3)),
                     .end_time = st.OptTime(4)});
    }
    if (rc != SQLITE_DONE) return Error("list attempts since");
    return out;
  }

  absl::StatusOr<std::vector<EventRecord>> ListEvents(int64_t job_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st = Prepare(
        "SELECT id, time, from_state, to_state, reason FROM events WHERE job_id = ? ORDER BY id");
    st.Bind(1, job_id);
    std::vector<EventRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      EventRecord e;
      e.id = st.Int(0);
      e.job_id = job_id;
      e.time = FromMicros(st.Int(1));
      if (!st.IsNull(2)) e.from = StateFrom(st.Text(2));
      e.to = StateFrom(st.Text(3));
      e.reason = st.Text(4);
      out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) return Error("list events");
    return out;
  }

  absl::Status Transition(const JobTransition& t) override {
    std::lock_guard lock(mu_);
    cache_.erase(t.job_id);
    SqliteDb::Transaction tx(db_.get());
    if (auto s = tx.Begin(); !s.ok()) return s;
    {
      SqlStmt st = Prepare(
          "UPDATE jobs SET state = ?, reason = ?, update_time = ?, "
          "exit_code = COALESCE(?, exit_code), "
          "start_time = CASE WHEN ? = 'RUNNING' AND start_time IS NULL THEN ? ELSE start_time END, "
          "end_time = CASE WHEN ? IN ('SUCCEEDED', 'FAILED', 'CANCELLED') THEN ? ELSE end_time "
          "END, "
          "attempts = COALESCE(?, attempts) "
          "WHERE id = ? AND state = ?");
      std::string to = StateText(t.to);
      st.Bind(1, to).Bind(2, t.reason).Bind(3, ToMicros(t.time)).BindOpt(4, t.exit_code);
      st.Bind(5, to).Bind(6, ToMicros(t.time)).Bind(7, to).Bind(8, ToMicros(t.time));
      if (t.new_attempt) {
        st.Bind(9, static_cast<int64_t>(t.new_attempt->number));
      } else {
        st.BindNull(9);
      }
      st.Bind(10, t.job_id).Bind(11, StateText(t.from));
      if (st.Step() != SQLITE_DONE) return Error("update job state");
    }
    if (db_->Changes() == 0) {
      auto job = GetJobLocked(t.job_id);
      if (!job.ok()) return job.status();
      return absl::FailedPreconditionError(
          absl::StrCat("job ", t.job_id, " is ", std::string(JobStateName(job->state)), ", not ",
                       std::string(JobStateName(t.from))));
    }
    if (t.new_attempt) {
      const AttemptRecord& a = *t.new_attempt;
      SqlStmt st = Prepare(
          "INSERT INTO attempts (job_id, number, state, reason, allocation, dir, create_time, "
          "limit_notes, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
      st.Bind(1, t.job_id).Bind(2, static_cast<int64_t>(a.number)).Bind(3, StateText(a.state));
      st.Bind(4, a.reason).Bind(5, AllocationToJson(a.allocation).dump()).Bind(6, a.dir);
      st.Bind(7, ToMicros(a.create_time)).Bind(8, json(a.limit_notes).dump());
      st.Bind(9, DetailsToJson(a).dump());
      if (st.Step() != SQLITE_DONE) return Error("insert attempt");
    }
    if (t.attempt_update) {
      if (auto s = UpdateAttemptLocked(t.job_id, *t.attempt_update); !s.ok()) return s;
    }
    if (auto s = InsertEventLocked(t.job_id, t.time, t.from, t.to, t.reason); !s.ok()) return s;
    return tx.Commit();
  }

  absl::Status UpdateAttempt(int64_t job_id, const AttemptUpdate& update) override {
    std::lock_guard lock(mu_);
    cache_.erase(job_id);
    return UpdateAttemptLocked(job_id, update);
  }

  absl::Status SetCancelRequested(int64_t job_id) override {
    std::lock_guard lock(mu_);
    cache_.erase(job_id);
    SqlStmt st = Prepare("UPDATE jobs SET cancel_requested = 1 WHERE id = ?");
    st.Bind(1, job_id);
    if (st.Step() != SQLITE_DONE) return Error("set cancel_requested");
    if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
    return absl::OkStatus();
  }

  absl::Status SetReasons(const std::map<int64_t, std::string>& reasons) override {
    if (reasons.empty()) return absl::OkStatus();
    std::lock_guard lock(mu_);
    // One commit (one fsync) for a scheduling pass's changes, however many jobs wait.
    SqliteDb::Transaction tx(db_.get());
    if (auto s = tx.Begin(); !s.ok()) return s;
    SqlStmt st = Prepare("UPDATE jobs SET reason = ? WHERE id = ? AND state = 'QUEUED'");
    for (const auto& [job_id, reason] : reasons) {
      cache_.erase(job_id);
      st.Reset();
      st.Bind(1, reason).Bind(2, job_id);
      if (st.Step() != SQLITE_DONE) return Error("set reason");
    }
    return tx.Commit();
  }

  absl::StatusOr<JobRecord> FindJobByIdempotencyKey(const std::string& key) override {
    std::lock_guard lock(mu_);
    return FindByKeyLocked(key);
  }

  absl::StatusOr<std::map<JobState, int64_t>> CountByState() override {
    std::lock_guard lock(mu_);
    SqlStmt st = Prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state");
    std::map<JobState, int64_t> out;
    for (JobState s : AllJobStates()) out[s] = 0;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out[StateFrom(st.Text(0))] = st.Int(1);
    if (rc != SQLITE_DONE) return Error("count jobs");
    return out;
  }

  absl::StatusOr<int64_t> CountJobs(int64_t tenant_id, JobState state) override {
    std::lock_guard lock(mu_);
    SqlStmt st = Prepare("SELECT COUNT(*) FROM jobs WHERE tenant_id = ? AND state = ?");
    st.Bind(1, tenant_id).Bind(2, StateText(state));
    if (st.Step() != SQLITE_ROW) return Error("count jobs");
    return st.Int(0);
  }

 private:
  // Every statement here is fixed SQL text (list filters only vary in how many '?' they have,
  // and their number is bounded by the API), so a failure to prepare is a bug.
  SqlStmt Prepare(absl::string_view sql) { return db_->Prepare(sql); }
  absl::Status Error(absl::string_view what) { return db_->Error(what); }

  absl::StatusOr<JobRecord> GetJobLocked(int64_t id) {
    SqlStmt st = Prepare(absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE id = ?"));
    st.Bind(1, id);
    auto jobs = ReadJobsLocked(st);
    if (!jobs.ok()) return jobs.status();
    if (jobs->empty()) return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
    return std::move(jobs->front());
  }

  absl::StatusOr<JobRecord> FindByKeyLocked(const std::string& key) {
    SqlStmt st =
        Prepare(absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE idempotency_key = ?"));
    st.Bind(1, key);
    auto jobs = ReadJobsLocked(st);
    if (!jobs.ok()) return jobs.status();
    if (jobs->empty()) return absl::NotFoundError("no job with this idempotency key");
    return std::move(jobs->front());
  }

  absl::StatusOr<std::vector<JobRecord>> ReadJobsLocked(SqlStmt& st) {
    std::vector<JobRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      JobRecord j;
      j.id = st.Int(0);
      auto spec = ParseJobSpec(json::parse(st.Text(1)));
      DLAB_CHECK(spec.ok());
      j.spec = *std::move(spec);
      j.snapshot = st.Text(2);
      j.state = StateFrom(st.Text(3));
      j.reason = st.Text(4);
      j.submit_time = FromMicros(st.Int(5));
      j.update_time = FromMicros(st.Int(6));
      j.start_time = st.OptTime(7);
      j.end_time = st.OptTime(8);
      j.exit_code = st.OptInt(9);
      j.attempts = static_cast<int>(st.Int(10));
      j.cancel_requested = st.Int(11) != 0;
      j.idempotency_key = st.Text(12);
      j.tenant_id = st.Int(13);
      j.owner = st.Text(14);
      out.push_back(std::move(j));
    }
    if (rc != SQLITE_DONE) return Error("read jobs");
    for (JobRecord& j : out) {
      auto attempts = ListAttemptsLocked(j.id);
      if (!attempts.ok()) return attempts.status();
      j.attempt_list = *std::move(attempts);
    }
    return out;
  }

  absl::Status InsertEventLocked(int64_t job_id, absl::Time time, std::optional<JobState> from,
                                 JobState to, const std::string& reason) {
    SqlStmt st = Prepare(
        "INSERT INTO events (job_id, time, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?)");
    st.Bind(1, job_id).Bind(2, ToMicros(time));
    if (from) {
      st.Bind(3, StateText(*from));
    } else {
      st.BindNull(3);
    }
    st.Bind(4, StateText(to)).Bind(5, reason);
    if (st.Step() != SQLITE_DONE) return Error("insert event");
    return absl::OkStatus();
  }

  absl::Status UpdateAttemptLocked(int64_t job_id, const AttemptUpdate& u) {
    if (u.failure || u.restart_counted || u.tasks) {
      SqlStmt read = Prepare("SELECT details FROM attempts WHERE job_id = ? AND number = ?");
      read.Bind(1, job_id).Bind(2, static_cast<int64_t>(u.number));
      if (read.Step() != SQLITE_ROW) return Error("read attempt details");
      AttemptRecord a;
      DetailsFromJson(read.Text(0), &a);
      if (u.failure) a.failure = *u.failure;
      if (u.restart_counted) a.restart_counted = *u.restart_counted;
      if (u.tasks) a.tasks = *u.tasks;
      SqlStmt write = Prepare("UPDATE attempts SET details = ? WHERE job_id = ? AND number = ?");
      write.Bind(1, DetailsToJson(a).dump())
          .Bind(2, job_id)
          .Bind(3, static_cast<int64_t>(u.number));
      if (write.Step() != SQLITE_DONE) return Error("update attempt details");
    }
    SqlStmt st = Prepare(
        "UPDATE attempts SET state = COALESCE(?, state), reason = COALESCE(?, reason), "
        "start_time = COALESCE(?, start_time), end_time = COALESCE(?, end_time), "
        "exit_code = COALESCE(?, exit_code), limit_notes = COALESCE(?, limit_notes) "
        "WHERE job_id = ? AND number = ?");
    if (u.state) {
      st.Bind(1, StateText(*u.state));
    } else {
      st.BindNull(1);
    }
    if (u.reason) {
      st.Bind(2, *u.reason);
    } else {
      st.BindNull(2);
    }
    st.BindOpt(3, u.start_time).BindOpt(4, u.end_time).BindOpt(5, u.exit_code);
    if (u.limit_notes) {
      st.Bind(6, json(*u.limit_notes).dump());
    } else {
      st.BindNull(6);
    }
    st.Bind(7, job_id).Bind(8, static_cast<int64_t>(u.number));
    if (st.Step() != SQLITE_DONE) return Error("update attempt");
    return absl::OkStatus();
  }

  // GetJob's answers, as read: every write of a job (all go through this store) drops its entry
  // first, so an entry is never stale. Bounded; an arbitrary entry makes room.
  static constexpr size_t kCacheSize = 1024;

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;                  // GUARDED_BY(mu_)
  std::unordered_map<int64_t, JobRecord> cache_;  // GUARDED_BY(mu_)
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::OpenSqlite(const std::string& path) {
  auto db = OpenDlabDb(path);
  if (!db.ok()) return db.status();
  return std::make_unique<SqliteStore>(*std::move(db));
}

}  // namespace dlab
