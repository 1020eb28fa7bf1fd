// SQLite implementation of IdentityStore: its own connection to dlab.db (WAL, synchronous=FULL),
// guarded by a mutex. Times are unix microseconds; a quota is its API JSON.
#include <sqlite3.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "nlohmann/json.hpp"
#include "store/dlab_db.h"
#include "store/identity_store.h"

namespace dlab {
namespace {

using nlohmann::json;

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

bool IsConstraint(int rc) { return (rc & 0xff) == SQLITE_CONSTRAINT; }

// Memberships with their tenant's and user's names, for ReadMemberships; a WHERE clause follows.
constexpr char kMembershipSelect[] =
    "SELECT m.tenant_id, t.name, m.user_id, u.name, m.role FROM memberships m "
    "JOIN tenants t ON t.id = m.tenant_id JOIN users u ON u.id = m.user_id ";

class SqliteIdentityStore final : public IdentityStore {
 public:
  explicit SqliteIdentityStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  absl::StatusOr<Tenant> CreateTenant(const std::string& name) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("INSERT INTO tenants (name, create_time) VALUES (?, ?)");
    absl::Time now = absl::Now();
    st.Bind(1, name).Bind(2, Micros(now));
    int rc = st.Step();
    if (IsConstraint(rc)) {
      return absl::AlreadyExistsError(absl::StrCat("tenant '", name, "' already exists"));
    }
    if (rc != SQLITE_DONE) return db_->Error("create tenant");
    return Tenant{.id = db_->LastInsertRowid(), .name = name, .create_time = now};
  }

  absl::StatusOr<Tenant> GetTenant(const std::string& name) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("SELECT id, name, create_time, quota FROM tenants WHERE name = ?");
    st.Bind(1, name);
    return ReadTenant(st, absl::StrCat("tenant '", name, "' not found"));
  }

  absl::StatusOr<Tenant> GetTenantById(int64_t id) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("SELECT id, name, create_time, quota FROM tenants WHERE id = ?");
    st.Bind(1, id);
    return ReadTenant(st, absl::StrCat("tenant ", id, " not found"));
  }

  absl::StatusOr<std::vector<Tenant>> ListTenants() override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("SELECT id, name, create_time, quota FROM tenants ORDER BY name");
    std::vector<Tenant> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(TenantFromRow(st));
    if (rc != SQLITE_DONE) return db_->Error("list tenants");
    return out;
  }

  absl::Status SetQuota(int64_t tenant_id, const TenantQuota& quota) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("UPDATE tenants SET quota = ? WHERE id = ?");
    st.Bind(1, TenantQuotaToJson(quota).dump()).Bind(2, tenant_id);
    if (st.Step() != SQLITE_DONE) return db_->Error("set quota");
    if (db_->Changes() == 0)
      return absl::NotFoundError(absl::StrCat("tenant ", tenant_id, " not found"));
    return absl::OkStatus();
  }

  absl::StatusOr<User> CreateUser(const User& user) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(
        "INSERT INTO users (name, password_hash, superadmin, create_time) VALUES (?, ?, ?, ?)");
    User out = user;
    out.create_time = absl::Now();
    st.Bind(1, user.name)
        .Bind(2, user.password_hash)
        .Bind(3, int64_t{user.superadmin})
        .Bind(4, Micros(out.create_time));
    int rc = st.Step();
    if (IsConstraint(rc)) {
      return absl::AlreadyExistsError(absl::StrCat("user '", user.name, "' already exists"));
    }
    if (rc != SQLITE_DONE) return db_->Error("create user");
    out.id = db_->LastInsertRowid();
    return out;
  }

  absl::StatusOr<User> GetUser(const std::string& name) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(
        "SELECT id, name, password_hash, superadmin, create_time FROM users WHERE name = ?");
    st.Bind(1, name);
    return ReadUser(st, absl::StrCat("user '", name, "' not found"));
  }

  absl::StatusOr<User> GetUserById(int64_t id) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(
        "SELECT id, name, password_hash, superadmin, create_time FROM users WHERE id = ?");
    st.Bind(1, id);
    return ReadUser(st, absl::StrCat("user ", id, " not found"));
  }

  absl::StatusOr<std::vector<User>> ListUsers() override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(
        "SELECT id, name, password_hash, superadmin, create_time FROM users ORDER BY name");
    std::vector<User> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(UserFromRow(st));
    if (rc != SQLITE_DONE) return db_->Error("list users");
    return out;
  }

  absl::Status SetPasswordHash(int64_t user_id, const std::string& hash) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("UPDATE users SET password_hash = ? WHERE id = ?");
    st.Bind(1, hash).Bind(2, user_id);
    if (st.Step() != SQLITE_DONE) return db_->Error("set password");
    if (db_->Changes() == 0)
      return absl::NotFoundError(absl::StrCat("user ", user_id, " not found"));
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> CountUsers() override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("SELECT COUNT(*) FROM users");
    if (st.Step() != SQLITE_ROW) return db_->Error("count users");
    return st.Int(0);
  }

  absl::Status SetMembership(int64_t tenant_id, int64_t user_id, Role role) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(
        "INSERT INTO memberships (tenant_id, user_id, role) VALUES (?, ?, ?) "
        "ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role");
    st.Bind(1, tenant_id).Bind(2, user_id).Bind(3, RoleName(role));
    int rc = st.Step();
    if (IsConstraint(rc)) return absl::NotFoundError("no such tenant or user");
    if (rc != SQLITE_DONE) return db_->Error("set membership");
    return absl::OkStatus();
  }

  absl::Status RemoveMembership(int64_t tenant_id, int64_t user_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("DELETE FROM memberships WHERE tenant_id = ? AND user_id = ?");
    st.Bind(1, tenant_id).Bind(2, user_id);
    if (st.Step() != SQLITE_DONE) return db_->Error("remove membership");
    if (db_->Changes() == 0) return absl::NotFoundError("not a member of this tenant");
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Membership>> UserMemberships(int64_t user_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(absl::StrCat(kMembershipSelect, "WHERE m.user_id = ? ORDER BY t.id"));
    st.Bind(1, user_id);
    return ReadMemberships(st);
  }

  absl::StatusOr<std::vector<Membership>> TenantMembers(int64_t tenant_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st =
        db_->Prepare(absl::StrCat(kMembershipSelect, "WHERE m.tenant_id = ? ORDER BY u.name"));
    st.Bind(1, tenant_id);
    return ReadMemberships(st);
  }

  absl::Status CreateAccessKey(const AccessKeyRecord& key) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(
        "INSERT INTO access_keys (id, user_id, name, sealed_secret, create_time) "
        "VALUES (?, ?, ?, ?, ?)");
    st.Bind(1, key.id)
        .Bind(2, key.user_id)
        .Bind(3, key.name)
        .Bind(4, key.sealed_secret)
        .Bind(5, Micros(key.create_time));
    int rc = st.Step();
    if (IsConstraint(rc)) return absl::AlreadyExistsError("access key id already exists");
    if (rc != SQLITE_DONE) return db_->Error("create access key");
    return absl::OkStatus();
  }

  absl::StatusOr<AccessKeyRecord> GetAccessKey(const std::string& id) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(absl::StrCat(kKeySelect, " WHERE k.id = ?"));
    st.Bind(1, id);
    int rc = st.Step();
    if (rc == SQLITE_DONE)
      return absl::NotFoundError(absl::StrCat("access key ", id, " not found"));
    if (rc != SQLITE_ROW) return db_->Error("read access key");
    return KeyFromRow(st);
  }

  absl::StatusOr<std::vector<AccessKeyRecord>> ListAccessKeys(int64_t user_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st =
        db_->Prepare(absl::StrCat(kKeySelect, " WHERE k.user_id = ? ORDER BY k.create_time"));
    st.Bind(1, user_id);
    std::vector<AccessKeyRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(KeyFromRow(st));
    if (rc != SQLITE_DONE) return db_->Error("list access keys");
    return out;
  }

  absl::StatusOr<AccessKeyRecord> RevokeAccessKey(const std::string& id, absl::Time time) override {
    std::lock_guard lock(mu_);
    {
      SqlStmt st = db_->Prepare(
          "UPDATE access_keys SET revoke_time = COALESCE(revoke_time, ?) WHERE id = ?");
      st.Bind(1, Micros(time)).Bind(2, id);
      if (st.Step() != SQLITE_DONE) return db_->Error("revoke access key");
      if (db_->Changes() == 0) {
        return absl::NotFoundError(absl::StrCat("access key ", id, " not found"));
      }
    }
    SqlStmt st = db_->Prepare(absl::StrCat(kKeySelect, " WHERE k.id = ?"));
    st.Bind(1, id);
    if (st.Step() != SQLITE_ROW) return db_->Error("read access key");
    return KeyFromRow(st);
  }

  absl::Status CreateSession(const SessionRecord& s) override {
    std::lock_guard lock(mu_);
    {  // expired sessions go as new ones come
      SqlStmt st = db_->Prepare("DELETE FROM sessions WHERE expire_time < ?");
      st.Bind(1, Micros(s.create_time));
      if (st.Step() != SQLITE_DONE) return db_->Error("expire sessions");
    }
    SqlStmt st = db_->Prepare(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, create_time, expire_time) "
        "VALUES (?, ?, ?, ?, ?)");
    st.Bind(1, s.id_hash)
        .Bind(2, s.user_id)
        .Bind(3, s.csrf_token)
        .Bind(4, Micros(s.create_time))
        .Bind(5, Micros(s.expire_time));
    if (st.Step() != SQLITE_DONE) return db_->Error("create session");
    return absl::OkStatus();
  }

  absl::StatusOr<SessionRecord> GetSession(const std::string& id_hash, absl::Time now) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(
        "SELECT id_hash, user_id, csrf_token, create_time, expire_time FROM sessions "
        "WHERE id_hash = ? AND expire_time > ?");
    st.Bind(1, id_hash).Bind(2, Micros(now));
    int rc = st.Step();
    if (rc == SQLITE_DONE) return absl::NotFoundError("no such session");
    if (rc != SQLITE_ROW) return db_->Error("read session");
    return SessionRecord{.id_hash = st.Text(0),
                         .user_id = st.Int(1),
                         .csrf_token = st.Text(2),
                         .create_time = FromMicros(st.Int(3)),
                         .expire_time = FromMicros(st.Int(4))};
  }

  absl::Status DeleteSession(const std::string& id_hash) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("DELETE FROM sessions WHERE id_hash = ?");
    st.Bind(1, id_hash);
    if (st.Step() != SQLITE_DONE) return db_->Error("delete session");
    return absl::OkStatus();
  }

  absl::Status DeleteUserSessions(int64_t user_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare("DELETE FROM sessions WHERE user_id = ?");
    st.Bind(1, user_id);
    if (st.Step() != SQLITE_DONE) return db_->Error("delete sessions");
    return absl::OkStatus();
  }

  absl::Status AddSnapshotTenant(const std::string& snapshot, int64_t tenant_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st =
        db_->Prepare("INSERT OR IGNORE INTO snapshot_tenants (snapshot, tenant_id) VALUES (?, ?)");
    st.Bind(1, snapshot).Bind(2, tenant_id);
    if (st.Step() != SQLITE_DONE) return db_->Error("record snapshot");
    return absl::OkStatus();
  }

  absl::StatusOr<bool> SnapshotHasTenant(const std::string& snapshot, int64_t tenant_id) override {
    std::lock_guard lock(mu_);
    SqlStmt st =
        db_->Prepare("SELECT 1 FROM snapshot_tenants WHERE snapshot = ? AND tenant_id = ?");
    st.Bind(1, snapshot).Bind(2, tenant_id);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) return db_->Error("read snapshot tenants");
    return false;
  }

  absl::Status AppendAudit(const AuditRecord& r) override {
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(
        "INSERT INTO audit (time, user, key_id, tenant_id, tenant, action, target, status, "
        "message, remote) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    st.Bind(1, Micros(r.time))
        .Bind(2, r.user)
        .Bind(3, r.key_id)
        .Bind(4, r.tenant_id)
        .Bind(5, r.tenant)
        .Bind(6, r.action)
        .Bind(7, r.target)
        .Bind(8, static_cast<int64_t>(r.status))
        .Bind(9, r.message)
        .Bind(10, r.remote);
    if (st.Step() != SQLITE_DONE) return db_->Error("append audit record");
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<AuditRecord>> ListAudit(const AuditFilter& f) override {
    std::string sql =
        "SELECT id, time, user, key_id, tenant_id, tenant, action, target, status, message, "
        "remote FROM audit WHERE 1=1";
    if (f.tenant_id > 0) absl::StrAppend(&sql, " AND tenant_id = ?");
    if (f.before_id > 0) absl::StrAppend(&sql, " AND id < ?");
    absl::StrAppend(&sql, " ORDER BY id DESC LIMIT ?");
    std::lock_guard lock(mu_);
    SqlStmt st = db_->Prepare(sql);
    int i = 1;
    if (f.tenant_id > 0) st.Bind(i++, f.tenant_id);
    if (f.before_id > 0) st.Bind(i++, f.before_id);
    st.Bind(i, static_cast<int64_t>(f.limit));
    std::vector<AuditRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      out.push_back({.id = st.Int(0),
                     .time = FromMicros(st.Int(1)),
                     .user = st.Text(2),
                     .key_id = st.Text(3),
                     .tenant_id = st.Int(4),
                     .tenant = st.Text(5),
                     .action = st.Text(6),
                     .target = st.Text(7),
                     .status = static_cast<int>(st.Int(8)),
                     .message = st.Text(9),
                     .remote = st.Text(10)});
    }
    if (rc != SQLITE_DONE) return db_->Error("list audit records");
    return out;
  }

 private:
  static constexpr char kKeySelect[] =
      "SELECT k.id, k.user_id, u.name, k.name, k.sealed_secret, k.create_time, k.revoke_time "
      "FROM access_keys k JOIN users u ON u.id = k.user_id";

  static AccessKeyRecord KeyFromRow(SqlStmt& st) {
    return {.id = st.Text(0),
            .user_id = st.Int(1),
            .user = st.Text(2),
            .name = st.Text(3),
            .sealed_secret = st.Text(4),
            .create_time = FromMicros(st.Int(5)),
            .revoke_time = st.OptTime(6)};
  }

  static Tenant TenantFromRow(SqlStmt& st) {
    Tenant t{.id = st.Int(0), .name = st.Text(1), .create_time = FromMicros(st.Int(2))};
    auto quota = TenantQuotaFromJson(json::parse(st.Text(3), nullptr, false));
    if (quota.ok()) t.quota = *std::move(quota);  // '{}' and everything written by SetQuota
    return t;
  }

  absl::StatusOr<Tenant> ReadTenant(SqlStmt& st, const std::string& not_found) {
    int rc = st.Step();
    if (rc == SQLITE_DONE) return absl::NotFoundError(not_found);
    if (rc != SQLITE_ROW) return db_->Error("read tenant");
    return TenantFromRow(st);
  }

  static User UserFromRow(SqlStmt& st) {
    return {.id = st.Int(0),
            .name = st.Text(1),
            .password_hash = st.Text(2),
            .superadmin = st.Int(3) != 0,
            .create_time = FromMicros(st.Int(4))};
  }

  absl::StatusOr<User> ReadUser(SqlStmt& st, const std::string& not_found) {
    int rc = st.Step();
    if (rc == SQLITE_DONE) return absl::NotFoundError(not_found);
    if (rc != SQLITE_ROW) return db_->Error("read user");
    return UserFromRow(st);
  }

  absl::StatusOr<std::vector<Membership>> ReadMemberships(SqlStmt& st) {
    std::vector<Membership> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      auto role = ParseRole(st.Text(4));
      out.push_back({.tenant_id = st.Int(0),
                     .tenant = st.Text(1),
                     .user_id = st.Int(2),
                     .user = st.Text(3),
                     .role = role.value_or(Role::kViewer)});
    }
    if (rc != SQLITE_DONE) return db_->Error("read memberships");
    return out;
  }

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;  // GUARDED_BY(mu_)
};

}  // namespace

std::string RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kMember:
      return "member";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "member") return Role::kMember;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<IdentityStore>> IdentityStore::OpenSqlite(const std::string& path) {
  auto db = OpenDlabDb(path);
  if (!db.ok()) return db.status();
  return std::make_unique<SqliteIdentityStore>(*std::move(db));
}

}  // namespace dlab
