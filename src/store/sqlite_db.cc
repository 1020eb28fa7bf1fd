#include "store/sqlite_db.h"

#include <sqlite3.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace dlab {

SqlStmt::~SqlStmt() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

SqlStmt& SqlStmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}

SqlStmt& SqlStmt::Bind(int i, double v) {
  sqlite3_bind_double(s_, i, v);
  return *this;
}

SqlStmt& SqlStmt::Bind(int i, absl::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

SqlStmt& SqlStmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

int SqlStmt::Step() { return sqlite3_step(s_); }

void SqlStmt::Reset() { sqlite3_reset(s_); }

int64_t SqlStmt::Int(int col) const { return sqlite3_column_int64(s_, col); }

double SqlStmt::Double(int col) const { return sqlite3_column_double(s_, col); }

bool SqlStmt::IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

std::string SqlStmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(s_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, col)) : "";
}

std::optional<absl::Time> SqlStmt::OptTime(int col) const {
  if (IsNull(col)) return std::nullopt;
  return absl::FromUnixMicros(Int(col));
}

std::optional<int> SqlStmt::OptInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return static_cast<int>(Int(col));
}

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path,
                                                         const Options& options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open ", options.file, " ", path, ": ", msg));
  }
  std::unique_ptr<SqliteDb> out(new SqliteDb(db, options.name));
  absl::Status s;
  for (const char* pragma : options.pragmas) {
    s = out->Exec(pragma);
    if (!s.ok()) break;
  }
  if (s.ok()) s = out->Migrate(options.migrations);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot use ", options.file, " ", path, ": ", s.message()));
  }
  return out;
}

SqliteDb::SqliteDb(sqlite3* db, absl::string_view name) : db_(db), name_(name) {}

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

SqlStmt SqliteDb::Prepare(absl::string_view sql) {
  const std::string_view key(sql.data(), sql.size());
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      std::fprintf(stderr, "%s: cannot prepare %.*s: %s\n", name_.c_str(),
                   static_cast<int>(sql.size()), sql.data(), sqlite3_errmsg(db_));
    }
    DLAB_CHECK(rc == SQLITE_OK);
    it = cache_.emplace(std::string(key), stmt).first;
  }
  return SqlStmt(it->second);
}

absl::Status SqliteDb::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::UnavailableError(absl::StrCat(name_, ": ", msg));
  }
  return absl::OkStatus();
}

absl::Status SqliteDb::Error(absl::string_view what) const {
  return absl::UnavailableError(absl::StrCat(name_, ": ", what, ": ", sqlite3_errmsg(db_)));
}

int64_t SqliteDb::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

int SqliteDb::Changes() const { return sqlite3_changes(db_); }

absl::Status SqliteDb::Migrate(absl::Span<const char* const> migrations) {
  int64_t version = 0;
  {
    SqlStmt st = Prepare("PRAGMA user_version");
    if (st.Step() == SQLITE_ROW) version = st.Int(0);
  }
  const int64_t target = static_cast<int64_t>(migrations.size());
  if (version > target) {
    return absl::FailedPreconditionError(absl::StrCat(name_, ": database schema version ", version,
                                                      " is newer than this dlabd (", target, ")"));
  }
  for (; version < target; ++version) {
    if (auto s = Exec(absl::StrCat("BEGIN; ", migrations[version],
                                   "; PRAGMA user_version = ", version + 1, "; COMMIT;"));
        !s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return s;
    }
  }
  return absl::OkStatus();
}

SqliteDb::Transaction::~Transaction() {
  if (!open_) return;
  db_->Exec("ROLLBACK").IgnoreError();
  if (on_rollback_) on_rollback_();
}

absl::Status SqliteDb::Transaction::Begin() {
  auto s = db_->Exec("BEGIN IMMEDIATE");
  open_ = s.ok();
  return s;
}

absl::Status SqliteDb::Transaction::Commit() {
  auto s = db_->Exec("COMMIT");
  if (s.ok()) open_ = false;
  return s;
}

}  // namespace dlab
