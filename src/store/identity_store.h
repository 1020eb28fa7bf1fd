// IdentityStore: who may use dlab and what they did. Tenants (teams) with their quotas, users,
// memberships (a role per tenant), access keys (secrets sealed, see auth/secrets.h), login
// sessions (only a hash of the session id is kept), which tenants uploaded which snapshot, and
// the audit trail. Tables live in dlab.db beside the jobs (store/dlab_db.h). Thread-safe; each
// call is durable when it returns.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tenant_quota.h"

namespace dlab {

// Roles within a tenant, in increasing power: each can do what the ones before it can.
enum class Role { kViewer = 1, kMember = 2, kAdmin = 3 };
std::string RoleName(Role role);  // "viewer", "member", "admin"
std::optional<Role> ParseRole(std::string_view name);

inline constexpr int64_t kDefaultTenantId = 1;  // "default", created with the schema

struct Tenant {
  int64_t id = 0;
  std::string name;
  absl::Time create_time;
  TenantQuota quota;
};

struct User {
  int64_t id = 0;
  std::string name;
  std::string password_hash;  // auth::HashPassword; empty: cannot log in with a password
  bool superadmin = false;
  absl::Time create_time;
};

struct Membership {
  int64_t tenant_id = 0;
  std::string tenant;
  int64_t user_id = 0;
  std::string user;
  Role role = Role::kViewer;
};

struct AccessKeyRecord {
  std::string id;  // "AK..."
  int64_t user_id = 0;
  std::string user;
  std::string name;
  std::string sealed_secret;  // auth::SecretBox::Seal of the secret
  absl::Time create_time;
  std::optional<absl::Time> revoke_time;
};

struct SessionRecord {
  std::string id_hash;  // hex SHA-256 of the session id in the cookie
  int64_t user_id = 0;
  std::string csrf_token;
  absl::Time create_time;
  absl::Time expire_time;
};

struct AuditRecord {
  int64_t id = 0;
  absl::Time time;
  std::string user;    // empty: not authenticated
  std::string key_id;  // empty: a session or no credential
  int64_t tenant_id = 0;
  std::string tenant;
  std::string action;  // what the route does: "job.submit", "key.revoke", "login", ...
  std::string target;  // the request path; a created object's id appended: "/api/v1/jobs/12"
  int status = 0;      // the HTTP status of the answer
  std::string message;
  std::string remote;  // client address
};

struct AuditFilter {
  int64_t tenant_id = 0;  // 0: every tenant
  int64_t before_id = 0;  // cursor; 0: from the newest
  int limit = 100;
};

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;
  // Opens dlab.db at path (migrating it if needed).
  static absl::StatusOr<std::unique_ptr<IdentityStore>> OpenSqlite(const std::string& path);

  // AlreadyExists for a taken name.
  virtual absl::StatusOr<Tenant> CreateTenant(const std::string& name) = 0;
  virtual absl::StatusOr<Tenant> GetTenant(const std::string& name) = 0;  // NotFound
  virtual absl::StatusOr<Tenant> GetTenantById(int64_t id) = 0;          // NotFound
  virtual absl::StatusOr<std::vector<Tenant>> ListTenants() = 0;         // by name
  virtual absl::Status SetQuota(int64_t tenant_id, const TenantQuota& quota) = 0;

  // AlreadyExists for a taken name.
  virtual absl::StatusOr<User> CreateUser(const User& user) = 0;
  virtual absl::StatusOr<User> GetUser(const std::string& name) = 0;  // NotFound
  virtual absl::StatusOr<User> GetUserById(int64_t id) = 0;          // NotFound
  virtual absl::StatusOr<std::vector<User>> ListUsers() = 0;         // by name
  virtual absl::Status SetPasswordHash(int64_t user_id, const std::string& hash) = 0;
  virtual absl::StatusOr<int64_t> CountUsers() = 0;

  // Adds the membership or changes its role.
  virtual absl::Status SetMembership(int64_t tenant_id, int64_t user_id, Role role) = 0;
  // NotFound when there was none.
  virtual absl::Status RemoveMembership(int64_t tenant_id, int64_t user_id) = 0;
  virtual absl::StatusOr<std::vector<Membership>> UserMemberships(int64_t user_id) = 0;
  virtual absl::StatusOr<std::vector<Membership>> TenantMembers(int64_t tenant_id) = 0;

  virtual absl::Status CreateAccessKey(const AccessKeyRecord& key) = 0;
  virtual absl::StatusOr<AccessKeyRecord> GetAccessKey(const std::string& id) = 0;  // NotFound
  virtual absl::StatusOr<std::vector<AccessKeyRecord>> ListAccessKeys(int64_t user_id) = 0;
  // Revokes once; revoking again keeps the first time. NotFound for an unknown id.
  virtual absl::StatusOr<AccessKeyRecord> RevokeAccessKey(const std::string& id,
                                                          absl::Time time) = 0;

  virtual absl::Status CreateSession(const SessionRecord& session) = 0;
  // NotFound when unknown or expired at `now`.
  virtual absl::StatusOr<SessionRecord> GetSession(const std::string& id_hash, absl::Time now) = 0;
  virtual absl::Status DeleteSession(const std::string& id_hash) = 0;
  virtual absl::Status DeleteUserSessions(int64_t user_id) = 0;

  virtual absl::Status AddSnapshotTenant(const std::string& snapshot, int64_t tenant_id) = 0;
  virtual absl::StatusOr<bool> SnapshotHasTenant(const std::string& snapshot,
                                                 int64_t tenant_id) = 0;

  virtual absl::Status AppendAudit(const AuditRecord& record) = 0;
  // Newest first.
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(const AuditFilter& filter) = 0;
};

}  // namespace dlab
