#include "api/auth_gate.h"

#include <openssl/crypto.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "api/json_util.h"
#include "common/sha256.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace dlab {
namespace {

using nlohmann::json;

bool IsWrite(const std::string& method) { return method != "GET" && method != "HEAD"; }

std::optional<std::string> CookieValue(const HttpRequest& req, absl::string_view name) {
  auto header = req.Header("cookie");
  if (!header) return std::nullopt;
  for (absl::string_view part : absl::StrSplit(*header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, name) && absl::ConsumePrefix(&part, "=")) {
      return std::string(part);
    }
  }
  return std::nullopt;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string AccessWord(Access access) {
  switch (access) {
    case Access::kViewer:
      return "viewer";
    case Access::kMember:
      return "member";
    case Access::kAdmin:
      return "admin";
    case Access::kSuperadmin:
      return "superadmin";
    case Access::kSelf:
      return "signed-in user";
  }
  return "";
}

}  // namespace

AuthGate::AuthGate(IdentityStore* identity, const auth::SecretBox* box,
                   absl::Duration session_lifetime)
    : identity_(identity), box_(box), session_lifetime_(session_lifetime) {}

std::optional<AuthGate::CachedKey> AuthGate::LookupKey(absl::string_view key_id) {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(key_id);
    if (it != keys_.end()) return it->second;
    generation = generation_;
  }
  auto key = identity_->GetAccessKey(std::string(key_id));
  if (!key.ok() || key->revoke_time) return std::nullopt;
  auto secret = box_->Open(key->sealed_secret);
  if (!secret.ok()) {
    spdlog::warn("access key {}: cannot open its secret: {}", key->id, secret.status().ToString());
    return std::nullopt;
  }
  CachedKey cached{.secret = *std::move(secret), .user_id = key->user_id};
  std::lock_guard lock(mu_);
  // Not cached when a revocation or identity change came meanwhile: it may be stale.
  if (generation == generation_) keys_[key->id] = cached;
  return cached;
}

absl::StatusOr<std::shared_ptr<const AuthGate::CachedUser>> AuthGate::LookupUser(
    int64_t user_id) {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(user_id);
    if (it != users_.end()) return it->second;
    generation = generation_;
  }
  auto user = identity_->GetUserById(user_id);
  if (!user.ok()) return user.status();
  auto memberships = identity_->UserMemberships(user_id);
  if (!memberships.ok()) return memberships.status();
  auto cached = std::make_shared<const CachedUser>(
      CachedUser{.user = *std::move(user), .memberships = *std::move(memberships)});
  std::lock_guard lock(mu_);
  if (generation == generation_) users_[user_id] = cached;
  return cached;
}

void AuthGate::Invalidate() {
  std::lock_guard lock(mu_);
  ++generation_;
  users_.clear();
}

std::string AuthGate::TenantName(int64_t tenant_id) {
  {
    std::lock_guard lock(mu_);
    auto it = tenant_names_.find(tenant_id);
    if (it != tenant_names_.end()) return it->second;
  }
  auto tenant = identity_->GetTenantById(tenant_id);
  if (!tenant.ok()) return absl::StrCat(tenant_id);
  std::lock_guard lock(mu_);
  tenant_names_[tenant_id] = tenant->name;
  return tenant->name;
}

absl::Status AuthGate::ResolveTenant(const HttpRequest& req, Caller* caller) {
  auto wanted = req.Header(kTenantHeader);
  if (wanted && !wanted->empty()) {
    for (const Membership& m : caller->memberships) {
      if (m.tenant == *wanted) {
        caller->tenant_id = m.tenant_id;
        caller->tenant = m.tenant;
        caller->role = caller->superadmin ? Role::kAdmin : m.role;
        return absl::OkStatus();
      }
    }
    if (caller->superadmin) {
      auto tenant = identity_->GetTenant(*wanted);
      if (!tenant.ok()) return tenant.status();
      caller->tenant_id = tenant->id;
      caller->tenant = tenant->name;
      caller->role = Role::kAdmin;
      return absl::OkStatus();
    }
    // The same answer whether or not the tenant exists.
    return absl::NotFoundError(
        absl::StrCat("tenant '", *wanted, "' not found (X-Dlab-Tenant), or you are not a member"));
  }
  if (!caller->memberships.empty()) {
    const Membership& m = caller->memberships.front();
    caller->tenant_id = m.tenant_id;
    caller->tenant = m.tenant;
    caller->role = caller->superadmin ? Role::kAdmin : m.role;
  } else if (caller->superadmin) {
    caller->tenant_id = kDefaultTenantId;
    caller->tenant = TenantName(kDefaultTenantId);
    caller->role = Role::kAdmin;
  }
  return absl::OkStatus();
}

absl::StatusOr<Caller> AuthGate::Authenticate(const HttpRequest& req) {
  Caller caller;
  int64_t user_id = 0;
  auto authorization = req.Header("authorization");
  auto session = CookieValue(req, kSessionCookie);
  if (!authorization && !session && anonymous_user_) {
    user_id = *anonymous_user_;
  } else if (!authorization && session) {
    auto record = identity_->GetSession(Sha256Hex(*session), absl::Now());
    if (!record.ok()) {
      if (absl::IsNotFound(record.status())) {
        return absl::UnauthenticatedError("session expired or logged out: log in again");
      }
      return record.status();
    }
    if (IsWrite(req.method)) {
      auto csrf = req.Header(kCsrfHeader);
      if (!csrf || !ConstantTimeEquals(*csrf, record->csrf_token)) {
        return absl::PermissionDeniedError(
            "missing or wrong X-CSRF-Token header: send the csrf_token from the login response");
      }
    }
    user_id = record->user_id;
    caller.session = true;
  } else {
    if (authorization && absl::StartsWith(*authorization, "Bearer ")) {
      return absl::UnauthenticatedError(
          "a job token (Bearer) is accepted only for its job's metrics and checkpoints; sign "
          "requests with an access key");
    }
    auth::RequestToSign request{.method = req.method, .path = req.path, .headers = req.headers};
    for (const auto& [k, v] : req.query) request.query.emplace_back(k, v);
    std::optional<int64_t> key_user;
    auto key_id = auth::Verify(
        request, req.body,
        [&](absl::string_view id) -> std::optional<std::string> {
          auto key = LookupKey(id);
          if (!key) return std::nullopt;
          key_user = key->user_id;
          return key->secret;
        },
        absl::Now(), &replays_);
    if (!key_id.ok()) return key_id.status();
    caller.key_id = *key_id;
    user_id = *key_user;
  }
  auto user = LookupUser(user_id);
  if (!user.ok()) return absl::UnauthenticatedError("the credential's user no longer exists");
  caller.user_id = (*user)->user.id;
  caller.user = (*user)->user.name;
  caller.superadmin = (*user)->user.superadmin;
  caller.memberships = (*user)->memberships;
  if (auto s = ResolveTenant(req, &caller); !s.ok()) return s;
  return caller;
}

Handler AuthGate::Wrap(Access access, std::string action, CallerHandler handler) {
  return [this, access, action = std::move(action),
          handler = std::move(handler)](const HttpRequest& req) {
    bool write = IsWrite(req.method);
    auto caller = Authenticate(req);
    HttpResponse response;
    if (!caller.ok()) {
      response = ErrorResponse(caller.status());
      if (absl::IsUnauthenticated(caller.status())) {
        response.headers.emplace_back("WWW-Authenticate", "DLAB-HMAC-SHA256");
      }
      if (write) Audit(req, nullptr, action, response);
      return response;
    }
    bool allowed = false;
    switch (access) {
      case Access::kSelf:
        allowed = true;
        break;
      case Access::kSuperadmin:
        allowed = caller->superadmin;
        break;
      case Access::kViewer:
        allowed = caller->Can(Role::kViewer);
        break;
      case Access::kMember:
        allowed = caller->Can(Role::kMember);
        break;
      case Access::kAdmin:
        allowed = caller->Can(Role::kAdmin);
        break;
    }
    if (!allowed) {
      std::string why =
          caller->tenant_id == 0 && access != Access::kSuperadmin
              ? absl::StrCat("user '", caller->user, "' is not a member of any tenant")
              : absl::StrCat("this needs the ", AccessWord(access), " role",
                             access == Access::kSuperadmin ? ""
                                                           : absl::StrCat(" in tenant '", caller->tenant, "'"),
                             "; user '", caller->user, "' is ",
                             caller->role ? RoleName(*caller->role) : std::string("not a member"),
                             caller->tenant_id ? absl::StrCat(" there") : "");
      response = ErrorResponse(absl::PermissionDeniedError(why));
    } else {
      response = handler(req, *caller);
    }
    if (write) Audit(req, &*caller, action, response);
    return response;
  };
}

void AuthGate::Audit(const HttpRequest& req, const Caller* caller, const std::string& action,
                     const HttpResponse& response) {
  AuditRecord record{.time = absl::Now(),
                     .action = action,
                     .target = req.path,
                     .status = response.status,
                     .remote = req.remote};
  if (caller != nullptr) {
    record.user = caller->user;
    record.key_id = caller->key_id;
    record.tenant_id = caller->tenant_id;
    record.tenant = caller->tenant;
  }
  if (!response.stream) {
    json body = json::parse(response.body, nullptr, false);
    if (body.is_object()) {
      if (response.status >= 400 && body.contains("error") && body["error"].is_object()) {
        record.message = body["error"].value("message", "");
      } else if (response.status == 201) {
        // The new object: "/api/v1/jobs" -> "/api/v1/jobs/13".
        if (body.contains("id") && (body["id"].is_number() || body["id"].is_string())) {
          absl::StrAppend(&record.target, "/",
                          body["id"].is_string() ? body["id"].get<std::string>()
                                                 : body["id"].dump());
        } else if (body.contains("name") && body["name"].is_string()) {
          absl::StrAppend(&record.target, "/", body["name"].get<std::string>());
        }
      }
    }
  }
  if (auto s = identity_->AppendAudit(record); !s.ok()) {
    spdlog::error("audit: cannot record {} {} by '{}': {}", req.method, req.path, record.user,
                  s.ToString());
  }
}

absl::StatusOr<AuthGate::NewSession> AuthGate::Login(const std::string& name,
                                                     const std::string& password) {
  auto user = identity_->GetUser(name);
  if (!user.ok() && !absl::IsNotFound(user.status())) return user.status();
  // A hash is computed also for an unknown name, so that timing does not tell names apart.
  static const std::string kDummy = auth::HashPassword("not a password");
  bool ok = auth::VerifyPassword(password, user.ok() && !user->password_hash.empty()
                                               ? user->password_hash
                                               : kDummy) &&
            user.ok() && !user->password_hash.empty();
  if (!ok) return absl::UnauthenticatedError("wrong user name or password");
  NewSession out{.user = *user,
                 .cookie = auth::RandomToken(32),
                 .csrf_token = auth::RandomToken(32),
                 .lifetime = session_lifetime_};
  absl::Time now = absl::Now();
  auto s = identity_->CreateSession({.id_hash = Sha256Hex(out.cookie),
                                     .user_id = user->id,
                                     .csrf_token = out.csrf_token,
                                     .create_time = now,
                                     .expire_time = now + session_lifetime_});
  if (!s.ok()) return s;
  return out;
}

absl::Status AuthGate::Logout(const HttpRequest& req) {
  auto session = CookieValue(req, kSessionCookie);
  if (!session) return absl::OkStatus();
  return identity_->DeleteSession(Sha256Hex(*session));
}

std::string AuthGate::SessionCookie(const std::string& id, absl::Duration lifetime) const {
  return absl::StrCat(kSessionCookie, "=", id, "; HttpOnly; SameSite=Strict; Path=/; Max-Age=",
                      absl::ToInt64Seconds(lifetime));
}

absl::StatusOr<std::pair<AccessKeyRecord, std::string>> AuthGate::CreateKey(
    const User& user, const std::string& name, const auth::AccessKey& given) {
  auth::AccessKey key = given.id.empty() ? auth::NewAccessKey() : given;
  AccessKeyRecord record{.id = key.id,
                         .user_id = user.id,
                         .user = user.name,
                         .name = name,
                         .sealed_secret = box_->Seal(key.secret),
                         .create_time = absl::Now()};
  if (auto s = identity_->CreateAccessKey(record); !s.ok()) return s;
  return std::pair{record, key.secret};
}

absl::StatusOr<AccessKeyRecord> AuthGate::RevokeKey(const std::string& key_id) {
  auto key = identity_->RevokeAccessKey(key_id, absl::Now());
  std::lock_guard lock(mu_);
  ++generation_;
  keys_.erase(key_id);
  return key;
}

}  // namespace dlab
