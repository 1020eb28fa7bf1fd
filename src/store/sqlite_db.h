// SQLite plumbing shared by the SQLite stores: a connection opened with the store's pragmas and
// migrated through PRAGMA user_version, a cache of prepared statements, RAII transactions and the
// store's error messages. Not thread-safe: each store guards its SqliteDb with its own mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

struct sqlite3;
struct sqlite3_stmt;

namespace dlab {

// A prepared statement borrowed from a SqliteDb's cache; reset, and its bindings cleared, on
// destruction. Bind has no int overload on purpose: pass int64_t or double explicitly.
class SqlStmt {
 public:
  explicit SqlStmt(sqlite3_stmt* s) : s_(s) {}
  ~SqlStmt();
  SqlStmt(const SqlStmt&) = delete;
  SqlStmt& operator=(const SqlStmt&) = delete;

  SqlStmt& Bind(int i, int64_t v);
  SqlStmt& Bind(int i, double v);
  SqlStmt& Bind(int i, absl::string_view v);  // copied: a temporary is fine
  SqlStmt& BindNull(int i);
  // NULL when unset; an absl::Time as unix microseconds, anything else as an integer.
  template <typename T>
  SqlStmt& BindOpt(int i, const std::optional<T>& v) {
    if (!v) return BindNull(i);
    if constexpr (std::is_same_v<T, absl::Time>) {
      return Bind(i, absl::ToUnixMicros(*v));
    } else {
      return Bind(i, static_cast<int64_t>(*v));
    }
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step();
  // Makes the statement ready to run again; bindings are kept.
  void Reset();

  int64_t Int(int col) const;
  double Double(int col) const;
  bool IsNull(int col) const;
  std::string Text(int col) const;                   // "" for NULL
  std::optional<absl::Time> OptTime(int col) const;  // from unix microseconds
  std::optional<int> OptInt(int col) const;

 private:
  sqlite3_stmt* s_;
};

class SqliteDb {
 public:
  struct Options {
    // Error messages start "<name>: ", e.g. "store".
    absl::string_view name;
    // What open errors call the file ("cannot open <file> <path>: ..."), e.g. "database".
    absl::string_view file;
    // Run in order once opened, e.g. "PRAGMA journal_mode=WAL".
    absl::Span<const char* const> pragmas;
    // Versioned migrations: migration i brings user_version from i to i+1. Append only.
    absl::Span<const char* const> migrations;
  };

  // Opens (creating if needed) the database at path, runs the pragmas and migrates it.
  // Unavailable when the file cannot be opened or used, e.g. when its schema is newer than the
  // migrations.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path,
                                                        const Options& options);

  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // The cached statement for sql. Statements are fixed SQL text, so a failure to prepare is a bug
  // (a check failure).
  SqlStmt Prepare(absl::string_view sql);
  // Runs sql (one or more statements without results); Unavailable on failure.
  absl::Status Exec(const std::string& sql);
  // Unavailable: "<name>: <what>: <SQLite's last error>".
  absl::Status Error(absl::string_view what) const;
  int64_t LastInsertRowid() const;
  int Changes() const;  // rows changed by the last statement

  // BEGIN IMMEDIATE ... COMMIT; rolled back on destruction unless committed, and then
  // on_rollback (when set) runs.
  class Transaction {
   public:
    explicit Transaction(SqliteDb* db, std::function<void()> on_rollback = nullptr)
        : db_(db), on_rollback_(std::move(on_rollback)) {}
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    absl::Status Begin();
    absl::Status Commit();

   private:
    SqliteDb* db_;
    std::function<void()> on_rollback_;
    bool open_ = false;
  };

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  SqliteDb(sqlite3* db, absl::string_view name);
  absl::Status Migrate(absl::Span<const char* const> migrations);

  sqlite3* db_;
  std::string name_;
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> cache_;
};

}  // namespace dlab
