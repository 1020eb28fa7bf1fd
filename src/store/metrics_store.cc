// SQLite implementation of MetricsStore. Points live in a WITHOUT ROWID table clustered on
// (job_id, name_id, step), so a series is one contiguous range read in step order and a repeated
// step is an in-place upsert; metric names are interned in a small table and cached in memory.
// Checkpoint times are unix microseconds; point times are unix seconds as REAL.
#include "store/metrics_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/check.h"
#include "nlohmann/json.hpp"
#include "store/sqlite_db.h"

namespace dlab {
namespace {

using nlohmann::json;

const char* const kPragmas[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                                "PRAGMA busy_timeout=5000", "PRAGMA cache_size=-16384"};

// Versioned migrations: migration i brings user_version from i to i+1. Append only.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE metric_names (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE metric_points (
  job_id INTEGER NOT NULL,
  name_id INTEGER NOT NULL,
  step INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  time REAL NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (job_id, name_id, step)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  step INTEGER NOT NULL,
  path TEXT NOT NULL,
  metrics TEXT NOT NULL,
  time INTEGER NOT NULL
);
CREATE INDEX checkpoints_job ON checkpoints(job_id, id);
)sql",
};

constexpr char kInsertPoint[] =
    "INSERT INTO metric_points (job_id, name_id, step, attempt, time, value) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, name_id, step) DO UPDATE SET "
    "attempt = excluded.attempt, time = excluded.time, value = excluded.value";

// The distinct name ids of a job, found by skipping through the primary key (one seek per name
// instead of a scan of every point).
constexpr char kJobNames[] =
    "WITH RECURSIVE ids(id) AS ("
    "  SELECT (SELECT MIN(name_id) FROM metric_points WHERE job_id = ?1)"
    "  UNION ALL"
    "  SELECT (SELECT MIN(name_id) FROM metric_points WHERE job_id = ?1 AND name_id > ids.id)"
    "  FROM ids WHERE ids.id IS NOT NULL)"
    "SELECT n.id, n.name FROM ids JOIN metric_names n ON n.id = ids.id";

constexpr char kCheckpointColumns[] = "id, job_id, attempt, step, path, metrics, time";

constexpr size_t kMaxNameBytes = 256;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

absl::Status ValidateName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("metric name: must not be empty");
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("metric name '", name.substr(0, 32),
                                                   "...': longer than ", kMaxNameBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateReports(const std::vector<MetricReport>& reports) {
  for (const MetricReport& r : reports) {
    if (r.step < 0) {
      return absl::InvalidArgumentError(absl::StrCat("step ", r.step, ": must be >= 0"));
    }
    for (const MetricValue& v : r.values) {
      if (auto s = ValidateName(v.name); !s.ok()) return s;
      if (!std::isfinite(v.value)) {
        return absl::InvalidArgumentError(
            absl::StrCat("metric '", v.name, "' at step ", r.step, ": value is not finite"));
      }
    }
  }
  return absl::OkStatus();
}

class SqliteMetricsStore final : public MetricsStore {
 public:
  explicit SqliteMetricsStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  absl::StatusOr<int64_t> Append(int64_t job_id, int attempt,
                                 const std::vector<MetricReport>& reports) override {
    if (auto s = ValidateReports(reports); !s.ok()) return s;
    std::lock_guard lock(mu_);
    // Names interned by a rolled-back transaction are gone.
    SqliteDb::Transaction tx(db_.get(), [this] { names_.clear(); });
    if (auto s = tx.Begin(); !s.ok()) return s;
    int64_t written = 0;
    {
      SqlStmt insert = Prepare(kInsertPoint);
      insert.Bind(1, job_id).Bind(4, static_cast<int64_t>(attempt));
      for (const MetricReport& r : reports) {
        insert.Bind(3, r.step).Bind(5, r.time);
        for (const MetricValue& v : r.values) {
          auto name_id = NameIdLocked(v.name, /*create=*/true);
          if (!name_id.ok()) return name_id.status();
          insert.Bind(2, **name_id).Bind(6, v.value);
          if (insert.Step() != SQLITE_DONE) return Error("insert metric point");
          insert.Reset();
          ++written;
        }
      }
    }
    if (auto s = tx.Commit(); !s.ok()) return s;
    return written;
  }

  absl::StatusOr<std::vector<MetricSeries>> Series(int64_t job_id,
                                                   const std::vector<std::string>& names,
                                                   int max_points) override {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, int64_t>> wanted;  // name, name id
    if (names.empty()) {
      SqlStmt st = Prepare(kJobNames);
      st.Bind(1, job_id);
      int rc;
      while ((rc = st.Step()) == SQLITE_ROW) wanted.emplace_back(st.Text(1), st.Int(0));
      if (rc != SQLITE_DONE) return Error("list metric names");
    } else {
      for (const std::string& name : names) {
        auto id = NameIdLocked(name, /*create=*/false);
        if (!id.ok()) return id.status();
        if (*id) wanted.emplace_back(name, **id);
      }
    }
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    std::vector<MetricSeries> out;
    for (const auto& [name, name_id] : wanted) {
      SqlStmt st = Prepare(
          "SELECT step, time, value FROM metric_points WHERE job_id = ? AND name_id = ? "
          "ORDER BY step");
      st.Bind(1, job_id).Bind(2, name_id);
      std::vector<MetricPoint> points;
      int rc;
      while ((rc = st.Step()) == SQLITE_ROW) {
        points.push_back({.step = st.Int(0), .time = st.Double(1), .value = st.Double(2)});
      }
      if (rc != SQLITE_DONE) return Error("read metric points");
      if (points.empty()) continue;
      MetricSeries series{
          .name = name, .count = static_cast<int64_t>(points.size()), .latest = points.back()};
      series.points = DownsampleMinMax(points, max_points);
      out.push_back(std::move(series));
    }
    return out;
  }

  absl::StatusOr<CheckpointRecord> AddCheckpoint(const CheckpointRecord& record) override {
    if (record.path.empty()) return absl::InvalidArgumentError("checkpoint path: is required");
    for (const auto& [name, value] : record.metrics) {
      if (auto s = ValidateName(name); !s.ok()) return s;
      if (!std::isfinite(value)) {
        return absl::InvalidArgumentError(
            absl::StrCat("checkpoint metric '", name, "': value is not finite"));
      }
    }
    CheckpointRecord out = record;
    if (out.time == absl::InfinitePast()) out.time = absl::Now();
    std::lock_guard lock(mu_);
    {
      // A client that resends after a lost answer gets the record it already made.
      SqlStmt latest =
          Prepare(absl::StrCat("SELECT ", kCheckpointColumns,
                               " FROM checkpoints WHERE job_id = ? ORDER BY id DESC LIMIT 1"));
      latest.Bind(1, out.job_id);
      auto list = ReadCheckpointsLocked(latest);
      if (!list.ok()) return list.status();
      if (!list->empty() && list->front().step == out.step && list->front().path == out.path &&
          list->front().attempt == out.attempt) {
        return std::move(list->front());
      }
    }
    SqlStmt st = Prepare(
        "INSERT INTO checkpoints (job_id, attempt, step, path, metrics, time) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    st.Bind(1, out.job_id).Bind(2, static_cast<int64_t>(out.attempt)).Bind(3, out.step);
    st.Bind(4, out.path).Bind(5, json(out.metrics).dump());
    st.Bind(6, absl::ToUnixMicros(out.time));
    if (st.Step() != SQLITE_DONE) return Error("insert checkpoint");
    out.id = db_->LastInsertRowid();
    out.time = absl::FromUnixMicros(absl::ToUnixMicros(out.time));  // as it reads back
    return out;
  }

  absl::StatusOr<std::vector<CheckpointRecord>> ListCheckpoints(int64_t job_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st = Prepare(absl::StrCat("SELECT ", kCheckpointColumns,
                                      " FROM checkpoints WHERE job_id = ? ORDER BY id"));
    st.Bind(1, job_id);
    return ReadCheckpointsLocked(st);
  }

  absl::StatusOr<std::optional<CheckpointRecord>> LatestCheckpoint(int64_t job_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st =
        Prepare(absl::StrCat("SELECT ", kCheckpointColumns,
                             " FROM checkpoints WHERE job_id = ? ORDER BY id DESC LIMIT 1"));
    st.Bind(1, job_id);
    auto list = ReadCheckpointsLocked(st);
    if (!list.ok()) return list.status();
    if (list->empty()) return std::nullopt;
    return std::move(list->front());
  }

 private:
  // Every statement here is fixed SQL text, so a failure to prepare is a bug.
  SqlStmt Prepare(absl::string_view sql) { return db_->Prepare(sql); }
  absl::Status Error(absl::string_view what) { return db_->Error(what); }

  // The id of a metric name; with create, interns a new name, else nullopt for an unknown one.
  absl::StatusOr<std::optional<int64_t>> NameIdLocked(const std::string& name, bool create) {
    if (auto it = names_.find(name); it != names_.end()) return it->second;
    if (create) {
      SqlStmt st =
          Prepare("INSERT INTO metric_names (name) VALUES (?) ON CONFLICT (name) DO NOTHING");
      st.Bind(1, name);
      if (st.Step() != SQLITE_DONE) return Error("insert metric name");
    }
    SqlStmt st = Prepare("SELECT id FROM metric_names WHERE name = ?");
    st.Bind(1, name);
    int rc = st.Step();
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) return Error("read metric name");
    names_.emplace(name, st.Int(0));
    return st.Int(0);
  }

  absl::StatusOr<std::vector<CheckpointRecord>> ReadCheckpointsLocked(SqlStmt& st) {
    std::vector<CheckpointRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      CheckpointRecord c;
      c.id = st.Int(0);
      c.job_id = st.Int(1);
      c.attempt = static_cast<int>(st.Int(2));
      c.step = st.Int(3);
      c.path = st.Text(4);
      json metrics = json::parse(st.Text(5), nullptr, /*allow_exceptions=*/false);
      DLAB_CHECK(metrics.is_object());
      for (const auto& [name, value] : metrics.items()) c.metrics[name] = value.get<double>();
      c.time = absl::FromUnixMicros(st.Int(6));
      out.push_back(std::move(c));
    }
    if (rc != SQLITE_DONE) return Error("read checkpoints");
    return out;
  }

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;                                                 // GUARDED_BY(mu_)
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> names_;  // GUARDED_BY(mu_)
};

}  // namespace

std::vector<MetricPoint> DownsampleMinMax(const std::vector<MetricPoint>& points, int max_points) {
  const size_t n = points.size();
  if (max_points <= 0 || n <= static_cast<size_t>(max_points)) return points;
  if (max_points == 1) return {points.back()};
  std::vector<MetricPoint> out;
  out.reserve(static_cast<size_t>(max_points));
  out.push_back(points.front());
  const size_t interior = n - 2;
  const size_t slots = static_cast<size_t>(max_points) - 2;
  // Two points per bucket; with a single slot (max_points 3), one bucket that keeps the point
  // farthest from the mean of the ends.
  const size_t buckets = std::max<size_t>(1, slots / 2);
  const double middle = (points.front().value + points.back().value) / 2;
  auto by_value = [](const MetricPoint& a, const MetricPoint& b) { return a.value < b.value; };
  for (size_t b = 0; b < buckets && slots > 0; ++b) {
    auto begin = points.begin() + 1 + static_cast<ptrdiff_t>(interior * b / buckets);
    auto end = points.begin() + 1 + static_cast<ptrdiff_t>(interior * (b + 1) / buckets);
    if (begin == end) continue;
    auto [lo, hi] = std::minmax_element(begin, end, by_value);
    if (slots == 1) {
      out.push_back(std::abs(lo->value - middle) > std::abs(hi->value - middle) ? *lo : *hi);
      continue;
    }
    out.push_back(lo < hi ? *lo : *hi);
    if (lo != hi) out.push_back(lo < hi ? *hi : *lo);
  }
  out.push_back(points.back());
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsStore>> MetricsStore::OpenSqlite(const std::string& path) {
  auto db = SqliteDb::Open(path, {.name = "metrics store",
                                  .file = "metrics database",
                                  .pragmas = kPragmas,
                                  .migrations = kMigrations});
  if (!db.ok()) return db.status();
  return std::make_unique<SqliteMetricsStore>(*std::move(db));
}

}  // namespace dlab
