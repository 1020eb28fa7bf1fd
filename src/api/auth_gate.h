// AuthGate: who is calling, in which tenant, with which role, and the audit trail. Every /api/v1
// route except login goes through Wrap, which authenticates the request (an access-key
// signature, docs/auth.md, or a login session cookie with its CSRF token), resolves the tenant
// it acts in (X-Dlab-Tenant, else the caller's first tenant), checks the route's required access,
// runs the handler, and records every mutating request (also refused ones) in the audit trail.
// Resolved keys and users are cached; calls that change identities invalidate the cache.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/http_server.h"
#include "auth/secrets.h"
#include "auth/signing.h"
#include "store/identity_store.h"

namespace dlab {

// What a route requires of its caller.
enum class Access {
  kViewer,      // read the tenant's objects
  kMember,      // change the tenant's jobs
  kAdmin,       // manage the tenant's members and keys
  kSuperadmin,  // manage tenants, users and quotas
  kSelf,        // any signed-in user, acting on their own identity (keys, password, whoami)
};

struct Caller {
  int64_t user_id = 0;
  std::string user;
  bool superadmin = false;
  std::string key_id;  // empty when signed in with a session
  bool session = false;
  int64_t tenant_id = 0;  // the tenant the request acts in; 0: none (a user without tenants)
  std::string tenant;
  std::optional<Role> role;  // in that tenant; a superadmin counts as its admin
  std::vector<Membership> memberships;

  bool Can(Role needed) const { return superadmin || (role && *role >= needed); }
  // May see objects of tenant_id (its own tenant, or any for a superadmin).
  bool Sees(int64_t object_tenant) const { return superadmin || object_tenant == tenant_id; }
};

using CallerHandler = std::function<HttpResponse(const HttpRequest&, const Caller&)>;

inline constexpr char kSessionCookie[] = "dlab_session";
inline constexpr char kTenantHeader[] = "x-dlab-tenant";
inline constexpr char kCsrfHeader[] = "x-csrf-token";

class AuthGate {
 public:
  AuthGate(IdentityStore* identity, const auth::SecretBox* box,
           absl::Duration session_lifetime = absl::Hours(12));

  // Insecure, for benchmarks and debugging on one's own machine (dlabd's `auth: none`): a
  // request without any credential acts as this user instead of getting 401.
  void AllowAnonymousAs(int64_t user_id) { anonymous_user_ = user_id; }

  // The handler behind authentication, the access check and (for every method but GET/HEAD)
  // the audit trail under `action` (e.g. "job.cancel").
  Handler Wrap(Access access, std::string action, CallerHandler handler);

  // 401 with a message saying what is wrong with the credential; 404 for a tenant the caller
  // cannot see (named in X-Dlab-Tenant); 403 for a bad CSRF token on a session's write.
  absl::StatusOr<Caller> Authenticate(const HttpRequest& req);

  // Password login: a new session for the user. Unauthenticated "wrong user name or password"
  // for either mistake (the same message, so that names cannot be probed).
  struct NewSession {
    User user;
    std::string cookie;  // the session id for the cookie (only its hash is stored)
    std::string csrf_token;
    absl::Duration lifetime;
  };
  absl::StatusOr<NewSession> Login(const std::string& user, const std::string& password);
  absl::Status Logout(const HttpRequest& req);
  // "dlab_session=<id>; HttpOnly; SameSite=Strict; Path=/; Max-Age=<s>" (empty id: expire it).
  std::string SessionCookie(const std::string& id, absl::Duration lifetime) const;

  // A new access key for the user; the secret is returned here only. `given` (both fields
  // set) is used instead of a random key, e.g. one from the bootstrap config.
  absl::StatusOr<std::pair<AccessKeyRecord, std::string>> CreateKey(
      const User& user, const std::string& name, const auth::AccessKey& given = {});
  absl::StatusOr<AccessKeyRecord> RevokeKey(const std::string& key_id);

  // Drops cached users (after a membership, user or tenant change).
  void Invalidate();

  // The name of a tenant id, cached (tenants are never renamed or deleted).
  std::string TenantName(int64_t tenant_id);

  void Audit(const HttpRequest& req, const Caller* caller, const std::string& action,
             const HttpResponse& response);

  IdentityStore* identity() const { return identity_; }

 private:
  struct CachedKey {
    std::string secret;
    int64_t user_id = 0;
  };
  struct CachedUser {
    User user;
    std::vector<Membership> memberships;
  };
  std::optional<CachedKey> LookupKey(absl::string_view key_id);
  // Shared, so that a request does not copy the user (with its password hash) out of the cache.
  absl::StatusOr<std::shared_ptr<const CachedUser>> LookupUser(int64_t user_id);
  absl::Status ResolveTenant(const HttpRequest& req, Caller* caller);

  IdentityStore* identity_;
  const auth::SecretBox* box_;
  std::optional<int64_t> anonymous_user_;
  absl::Duration session_lifetime_;
  auth::ReplayCache replays_;
  std::mutex mu_;
  std::map<std::string, CachedKey, std::less<>> keys_;  // GUARDED_BY(mu_)
  std::map<int64_t, std::shared_ptr<const CachedUser>> users_;  // GUARDED_BY(mu_)
  std::map<int64_t, std::string> tenant_names_;         // GUARDED_BY(mu_)
  uint64_t generation_ = 0;  // GUARDED_BY(mu_); bumped by revocations and identity changes
};

}  // namespace dlab
