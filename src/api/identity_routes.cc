#include "api/identity_routes.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "api/json_util.h"
#include "auth/secrets.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;

constexpr size_t kMinPassword = 8;

json Time(const std::optional<absl::Time>& t) { return t ? json(FormatRfc3339(*t)) : json(nullptr); }

json KeyJson(const AccessKeyRecord& k) {
  return {{"id", k.id},
          {"name", k.name},
          {"user", k.user},
          {"create_time", FormatRfc3339(k.create_time)},
          {"revoke_time", Time(k.revoke_time)},
          {"active", !k.revoke_time.has_value()}};
}

json UserJson(const User& u) {
  return {{"name", u.name},
          {"superadmin", u.superadmin},
          {"create_time", FormatRfc3339(u.create_time)}};
}

json TenantsOf(const std::vector<Membership>& memberships) {
  json out = json::array();
  for (const Membership& m : memberships) out.push_back({{"name", m.tenant}, {"role", RoleName(m.role)}});
  return out;
}

// A JSON object body; InvalidArgument saying what is expected otherwise.
absl::StatusOr<json> ObjectBody(const HttpRequest& req, const char* example) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("body: expected a JSON object like ", example));
  }
  return body;
}

absl::StatusOr<std::string> StringField(const json& body, const char* field, bool required) {
  if (!body.contains(field) || body[field].is_null()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat(field, ": is required"));
    return std::string();
  }
  if (!body[field].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be a string"));
  }
  return body[field].get<std::string>();
}

absl::Status CheckPassword(const std::string& password) {
  if (password.size() < kMinPassword) {
    return absl::InvalidArgumentError(
        absl::StrCat("password: must be at least ", kMinPassword, " characters"));
  }
  if (password.size() > 1024) return absl::InvalidArgumentError("password: at most 1024 characters");
  return absl::OkStatus();
}

// The caller's role in the named tenant (a superadmin: admin of every tenant), with the tenant;
// NotFound, the same whether the tenant does not exist or the caller is not in it.
absl::StatusOr<std::pair<Tenant, Role>> RoleIn(IdentityStore* identity, const Caller& caller,
                                                const std::string& tenant_name) {
  auto not_found = absl::NotFoundError(absl::StrCat("tenant '", tenant_name, "' not found"));
  std::optional<Role> role;
  for (const Membership& m : caller.memberships) {
    if (m.tenant == tenant_name) role = m.role;
  }
  if (caller.superadmin) role = Role::kAdmin;
  if (!role) return not_found;
  auto tenant = identity->GetTenant(tenant_name);
  if (!tenant.ok()) return absl::IsNotFound(tenant.status()) ? not_found : tenant.status();
  return std::pair{*std::move(tenant), *role};
}

absl::Status NeedRole(Role have, Role need, const Caller& caller, const std::string& tenant) {
  if (have >= need) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("this needs the ", RoleName(need),
                                                  " role in tenant '", tenant, "'; user '",
                                                  caller.user, "' is ", RoleName(have), " there"));
}

// The named tenant when the caller is its admin (or a superadmin); NotFound as RoleIn, 403 for a
// lesser role.
absl::StatusOr<Tenant> AdminOf(IdentityStore* identity, const Caller& caller,
                               const std::string& tenant_name) {
  auto tenant = RoleIn(identity, caller, tenant_name);
  if (!tenant.ok()) return tenant.status();
  if (auto s = NeedRole(tenant->second, Role::kAdmin, caller, tenant->first.name); !s.ok()) {
    return s;
  }
  return std::move(tenant->first);
}

// May the caller manage (list, revoke) the keys of `owner`? Themselves; a superadmin; an admin
// of a tenant the owner belongs to, unless the owner is a superadmin (a tenant admin could
// otherwise add one to their tenant and revoke their keys).
absl::StatusOr<bool> ManagesUser(IdentityStore* identity, const Caller& caller, int64_t owner) {
  if (owner == caller.user_id || caller.superadmin) return true;
  auto user = identity->GetUserById(owner);
  if (!user.ok()) return user.status();
  if (user->superadmin) return false;
  auto memberships = identity->UserMemberships(owner);
  if (!memberships.ok()) return memberships.status();
  for (const Membership& theirs : *memberships) {
    for (const Membership& mine : caller.memberships) {
      if (mine.tenant_id == theirs.tenant_id && mine.role == Role::kAdmin) return true;
    }
  }
  return false;
}

HttpResponse Login(const IdentityApiContext& ctx, const HttpRequest& req) {
  HttpResponse response;
  std::string name;
  auto body = ObjectBody(req, "{\"user\": \"alice\", \"password\": \"...\"}");
  if (!body.ok()) {
    response = ErrorResponse(body.status());
  } else {
    auto user = StringField(*body, "user", true);
    auto password = StringField(*body, "password", true);
    if (!user.ok()) {
      response = ErrorResponse(user.status());
    } else if (!password.ok()) {
      response = ErrorResponse(password.status());
    } else {
      name = *user;
      auto session = ctx.gate->Login(*user, *password);
      if (!session.ok()) {
        response = ErrorResponse(session.status());
      } else {
        auto memberships = ctx.identity->UserMemberships(session->user.id);
        response = JsonResponse(200, {{"user", session->user.name},
                                      {"superadmin", session->user.superadmin},
                                      {"csrf_token", session->csrf_token},
                                      {"tenants", memberships.ok() ? TenantsOf(*memberships)
                                                                   : json::array()}});
        response.headers.emplace_back(
            "Set-Cookie", ctx.gate->SessionCookie(session->cookie, session->lifetime));
        response.headers.emplace_back("Cache-Control", "no-store");
      }
    }
  }
  Caller who{.user = name};  // as claimed: the audit shows failed logins under the name tried
  ctx.gate->Audit(req, &who, "login", response);
  return response;
}

HttpResponse Logout(const IdentityApiContext& ctx, const HttpRequest& req, const Caller&) {
  if (auto s = ctx.gate->Logout(req); !s.ok()) return ErrorResponse(s);
  HttpResponse response{.status = 204, .body = ""};
  response.headers.emplace_back("Set-Cookie", ctx.gate->SessionCookie("", absl::ZeroDuration()));
  return response;
}

HttpResponse Whoami(const IdentityApiContext&, const HttpRequest&, const Caller& c) {
  return JsonResponse(200, {{"user", c.user},
                            {"superadmin", c.superadmin},
                            {"key_id", c.key_id.empty() ? json(nullptr) : json(c.key_id)},
                            {"session", c.session},
                            {"tenant", c.tenant_id ? json(c.tenant) : json(nullptr)},
                            {"role", c.role ? json(RoleName(*c.role)) : json(nullptr)},
                            {"tenants", TenantsOf(c.memberships)}});
}

HttpResponse CreateKey(const IdentityApiContext& ctx, const HttpRequest& req, const Caller& c) {
  json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    return ErrorResponse(
        absl::InvalidArgumentError("body: expected a JSON object like {\"name\": \"laptop\"}"));
  }
  auto name = StringField(body, "name", false);
  if (!name.ok()) return ErrorResponse(name.status());
  if (name->size() > 128) {
    return ErrorResponse(absl::InvalidArgumentError("name: at most 128 characters"));
  }
  auto user = ctx.identity->GetUserById(c.user_id);
  if (!user.ok()) return ErrorResponse(user.status());
  auto key = ctx.gate->CreateKey(*user, *name);
  if (!key.ok()) return ErrorResponse(key.status());
  json out = KeyJson(key->first);
  out["secret"] = key->second;
  HttpResponse response = JsonResponse(201, out);
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

HttpResponse ListKeys(const IdentityApiContext& ctx, const HttpRequest& req, const Caller& c) {
  int64_t owner = c.user_id;
  if (auto name = req.Query("user"); name && !name->empty() && *name != c.user) {
    auto user = ctx.identity->GetUser(*name);
    auto not_found = absl::NotFoundError(absl::StrCat("user '", *name, "' not found"));
    if (!user.ok()) return ErrorResponse(absl::IsNotFound(user.status()) ? not_found : user.status());
    auto manages = ManagesUser(ctx.identity, c, user->id);
    if (!manages.ok()) return ErrorResponse(manages.status());
    if (!*manages) return ErrorResponse(not_found);
    owner = user->id;
  }
  auto keys = ctx.identity->ListAccessKeys(owner);
  if (!keys.ok()) return ErrorResponse(keys.status());
  json list = json::array();
  for (const AccessKeyRecord& k : *keys) list.push_back(KeyJson(k));
  return JsonResponse(200, {{"keys", std::move(list)}});
}

HttpResponse RevokeKey(const IdentityApiContext& ctx, const HttpRequest& req, const Caller& c) {
  const std::string& id = req.path_params.at("id");
  auto not_found = absl::NotFoundError(absl::StrCat("access key ", id, " not found"));
  auto key = ctx.identity->GetAccessKey(id);
  if (!key.ok()) return ErrorResponse(absl::IsNotFound(key.status()) ? not_found : key.status());
  auto manages = ManagesUser(ctx.identity, c, key->user_id);
  if (!manages.ok()) return ErrorResponse(manages.status());
  if (!*manages) return ErrorResponse(not_found);
  auto revoked = ctx.gate->RevokeKey(id);
  if (!revoked.ok()) return ErrorResponse(revoked.status());
  return JsonResponse(200, KeyJson(*revoked));
}

HttpResponse ListTenants(const IdentityApiContext& ctx, const HttpRequest&, const Caller& c) {
  auto tenants = ctx.identity->ListTenants();
  if (!tenants.ok()) return ErrorResponse(tenants.status());
  json list = json::array();
  for (const Tenant& t : *tenants) {
    std::optional<Role> role;
    for (const Membership& m : c.memberships) {
      if (m.tenant_id == t.id) role = m.role;
    }
    if (!role && !c.superadmin) continue;
    list.push_back({{"name", t.name},
                    {"create_time", FormatRfc3339(t.create_time)},
                    {"role", role ? json(RoleName(*role)) : json(nullptr)}});
  }
  return JsonResponse(200, {{"tenants", std::move(list)}});
}

HttpResponse CreateTenant(const IdentityApiContext& ctx, const HttpRequest& req, const Caller&) {
  auto body = ObjectBody(req, "{\"name\": \"team-a\"}");
  if (!body.ok()) return ErrorResponse(body.status());
  auto name = StringField(*body, "name", true);
  if (!name.ok()) return ErrorResponse(name.status());
  if (auto s = ValidateName("name", *name); !s.ok()) return ErrorResponse(s);
  auto tenant = ctx.identity->CreateTenant(*name);
  if (!tenant.ok()) return ErrorResponse(tenant.status());
  ctx.gate->Invalidate();
  return JsonResponse(201, {{"name", tenant->name},
                            {"create_time", FormatRfc3339(tenant->create_time)},
                            {"role", nullptr}});
}

HttpResponse Members(const IdentityApiContext& ctx, const HttpRequest& req, const Caller& c) {
  auto tenant = AdminOf(ctx.identity, c, req.path_params.at("name"));
  if (!tenant.ok()) return ErrorResponse(tenant.status());
  auto members = ctx.identity->TenantMembers(tenant->id);
  if (!members.ok()) return ErrorResponse(members.status());
  json list = json::array();
  for (const Membership& m : *members) list.push_back({{"user", m.user}, {"role", RoleName(m.role)}});
  return JsonResponse(200, {{"members", std::move(list)}});
}

HttpResponse SetMember(const IdentityApiContext& ctx, const HttpRequest& req, const Caller& c) {
  auto tenant = AdminOf(ctx.identity, c, req.path_params.at("name"));
  if (!tenant.ok()) return ErrorResponse(tenant.status());
  auto body = ObjectBody(req, "{\"role\": \"member\"}");
  if (!body.ok()) return ErrorResponse(body.status());
  auto role_name = StringField(*body, "role", true);
  if (!role_name.ok()) return ErrorResponse(role_name.status());
  auto role = ParseRole(*role_name);
  if (!role) {
    return ErrorResponse(absl::InvalidArgumentError(
        absl::StrCat("role: unknown role '", *role_name, "' (admin, member, viewer)")));
  }
  const std::string& name = req.path_params.at("user");
  auto user = ctx.identity->GetUser(name);
  if (!user.ok()) return ErrorResponse(user.status());
  if (auto s = ctx.identity->SetMembership(tenant->id, user->id, *role); !s.ok()) {
    return ErrorResponse(s);
  }
  ctx.gate->Invalidate();
  return JsonResponse(200, {{"user", user->name}, {"role", RoleName(*role)}});
}

HttpResponse RemoveMember(const IdentityApiContext& ctx, const HttpRequest& req, const Caller& c) {
  auto tenant = AdminOf(ctx.identity, c, req.path_params.at("name"));
  if (!tenant.ok()) return ErrorResponse(tenant.status());
  const std::string& name = req.path_params.at("user");
  auto user = ctx.identity->GetUser(name);
  if (!user.ok()) return ErrorResponse(user.status());
  if (auto s = ctx.identity->RemoveMembership(tenant->id, user->id); !s.ok()) {
    return ErrorResponse(s);
  }
  ctx.gate->Invalidate();
  return HttpResponse{.status = 204, .body = ""};
}

HttpResponse CreateUser(const IdentityApiContext& ctx, const HttpRequest& req, const Caller&) {
  auto body = ObjectBody(req, "{\"name\": \"alice\", \"password\": \"...\"}");
  if (!body.ok()) return ErrorResponse(body.status());
  auto name = StringField(*body, "name", true);
  if (!name.ok()) return ErrorResponse(name.status());
  if (auto s = ValidateName("name", *name); !s.ok()) return ErrorResponse(s);
  auto password = StringField(*body, "password", false);
  if (!password.ok()) return ErrorResponse(password.status());
  if (!password->empty()) {
    if (auto s = CheckPassword(*password); !s.ok()) return ErrorResponse(s);
  }
  bool superadmin = false;
  if (body->contains("superadmin") && !(*body)["superadmin"].is_null()) {
    if (!(*body)["superadmin"].is_boolean()) {
      return ErrorResponse(absl::InvalidArgumentError("superadmin: must be true or false"));
    }
    superadmin = (*body)["superadmin"].get<bool>();
  }
  auto user = ctx.identity->CreateUser(
      {.name = *name,
       .password_hash = password->empty() ? "" : auth::HashPassword(*password),
       .superadmin = superadmin});
  if (!user.ok()) return ErrorResponse(user.status());
  return JsonResponse(201, UserJson(*user));
}

HttpResponse ListUsers(const IdentityApiContext& ctx, const HttpRequest&, const Caller&) {
  auto users = ctx.identity->ListUsers();
  if (!users.ok()) return ErrorResponse(users.status());
  json list = json::array();
  for (const User& u : *users) list.push_back(UserJson(u));
  return JsonResponse(200, {{"users", std::move(list)}});
}

HttpResponse SetPassword(const IdentityApiContext& ctx, const HttpRequest& req, const Caller& c) {
  const std::string& name = req.path_params.at("name");
  auto not_found = absl::NotFoundError(absl::StrCat("user '", name, "' not found"));
  if (name != c.user && !c.superadmin) return ErrorResponse(not_found);
  auto body = ObjectBody(req, "{\"password\": \"...\", \"current_password\": \"...\"}");
  if (!body.ok()) return ErrorResponse(body.status());
  auto password = StringField(*body, "password", true);
  if (!password.ok()) return ErrorResponse(password.status());
  if (auto s = CheckPassword(*password); !s.ok()) return ErrorResponse(s);
  auto user = ctx.identity->GetUser(name);
  if (!user.ok()) return ErrorResponse(absl::IsNotFound(user.status()) ? not_found : user.status());
  if (name == c.user && !user->password_hash.empty()) {
    auto current = StringField(*body, "current_password", true);
    if (!current.ok()) return ErrorResponse(current.status());
    if (!auth::VerifyPassword(*current, user->password_hash)) {
      return ErrorResponse(absl::PermissionDeniedError("current_password: does not match"));
    }
  }
  if (auto s = ctx.identity->SetPasswordHash(user->id, auth::HashPassword(*password)); !s.ok()) {
    return ErrorResponse(s);
  }
  // Sessions opened with the old password end (access keys stay: revoke them separately).
  if (auto s = ctx.identity->DeleteUserSessions(user->id); !s.ok()) return ErrorResponse(s);
  return HttpResponse{.status = 204, .body = ""};
}

HttpResponse QuotaResponse(const IdentityApiContext& ctx, const Tenant& tenant) {
  return JsonResponse(200, {{"tenant", tenant.name},
                            {"limits", TenantQuotaToJson(tenant.quota)},
                            {"used", TenantUsageToJson(ctx.controller->Usage(tenant.id))}});
}

HttpResponse GetQuota(const IdentityApiContext& ctx, const HttpRequest& req, const Caller& c) {
  auto tenant = RoleIn(ctx.identity, c, req.path_params.at("name"));
  if (!tenant.ok()) return ErrorResponse(tenant.status());
  return QuotaResponse(ctx, tenant->first);
}

HttpResponse SetQuota(const IdentityApiContext& ctx, const HttpRequest& req, const Caller&) {
  auto tenant = ctx.identity->GetTenant(req.path_params.at("name"));
  if (!tenant.ok()) return ErrorResponse(tenant.status());
  auto body = ObjectBody(req, "{\"gpus\": 4, \"running_jobs\": 10}");
  if (!body.ok()) return ErrorResponse(body.status());
  auto quota = TenantQuotaFromJson(*body);
  if (!quota.ok()) return ErrorResponse(quota.status());
  if (auto s = ctx.identity->SetQuota(tenant->id, *quota); !s.ok()) return ErrorResponse(s);
  tenant->quota = *quota;
  ctx.controller->Reschedule();  // a raised quota may let queued jobs start now
  return QuotaResponse(ctx, *tenant);
}

HttpResponse Audit(const IdentityApiContext& ctx, const HttpRequest& req, const Caller& c) {
  AuditFilter filter;
  auto limit = IntQuery(req, "limit", 100, 1, 1000);
  if (!limit.ok()) return ErrorResponse(limit.status());
  auto cursor = IntQuery(req, "cursor", 0, 0, INT64_MAX);
  if (!cursor.ok()) return ErrorResponse(cursor.status());
  filter.limit = static_cast<int>(*limit);
  filter.before_id = *cursor;
  auto tenant_name = req.Query("tenant");
  if (tenant_name && !tenant_name->empty()) {
    auto tenant = AdminOf(ctx.identity, c, *tenant_name);
    if (!tenant.ok()) return ErrorResponse(tenant.status());
    filter.tenant_id = tenant->id;
  } else if (!c.superadmin) {
    if (c.tenant_id == 0) {
      return ErrorResponse(absl::PermissionDeniedError(
          absl::StrCat("user '", c.user, "' is not a member of any tenant")));
    }
    if (auto s = NeedRole(*c.role, Role::kAdmin, c, c.tenant); !s.ok()) return ErrorResponse(s);
    filter.tenant_id = c.tenant_id;
  }
  auto records = ctx.identity->ListAudit(filter);
  if (!records.ok()) return ErrorResponse(records.status());
  json list = json::array();
  for (const AuditRecord& r : *records) {
    list.push_back({{"id", r.id},
                    {"time", FormatRfc3339(r.time)},
                    {"user", r.user},
                    {"key_id", r.key_id.empty() ? json(nullptr) : json(r.key_id)},
                    {"tenant", r.tenant.empty() ? json(nullptr) : json(r.tenant)},
                    {"action", r.action},
                    {"target", r.target},
                    {"status", r.status},
                    {"message", r.message},
                    {"remote", r.remote}});
  }
  json next = records->size() == static_cast<size_t>(filter.limit)
                  ? json(absl::StrCat(records->back().id))
                  : json(nullptr);
  return JsonResponse(200, {{"records", std::move(list)}, {"next_cursor", next}});
}

}  // namespace

absl::Status ValidateName(const std::string& what, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && absl::ascii_isalnum(name[0]);
  for (char ch : name) {
    ok = ok && (absl::ascii_isalnum(ch) || ch == '.' || ch == '_' || ch == '@' || ch == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": '", name.substr(0, 80),
      "' is not a valid name (1 to 64 of a-z A-Z 0-9 . _ @ -, starting with a letter or digit)"));
}

void RegisterIdentityRoutes(const IdentityApiContext& ctx, Router* router) {
  RouteOptions small{.max_body_bytes = ctx.max_request_bytes};
  AuthGate* gate = ctx.gate;
  auto bind = [ctx](HttpResponse (*f)(const IdentityApiContext&, const HttpRequest&,
                                      const Caller&)) {
    return [ctx, f](const HttpRequest& r, const Caller& c) { return f(ctx, r, c); };
  };
  router->Add("POST", "/api/v1/login", [ctx](const HttpRequest& r) { return Login(ctx, r); }, small);
  router->Add("POST", "/api/v1/logout", gate->Wrap(Access::kSelf, "logout", bind(Logout)), small);
  router->Add("GET", "/api/v1/whoami", gate->Wrap(Access::kSelf, "whoami", bind(Whoami)));
  router->Add("POST", "/api/v1/keys", gate->Wrap(Access::kSelf, "key.create", bind(CreateKey)),
              small);
  router->Add("GET", "/api/v1/keys", gate->Wrap(Access::kSelf, "key.list", bind(ListKeys)));
  router->Add("DELETE", "/api/v1/keys/{id}",
              gate->Wrap(Access::kSelf, "key.revoke", bind(RevokeKey)), small);
  router->Add("GET", "/api/v1/tenants", gate->Wrap(Access::kSelf, "tenant.list", bind(ListTenants)));
  router->Add("POST", "/api/v1/tenants",
              gate->Wrap(Access::kSuperadmin, "tenant.create", bind(CreateTenant)), small);
  router->Add("GET", "/api/v1/tenants/{name}/members",
              gate->Wrap(Access::kSelf, "member.list", bind(Members)));
  router->Add("PUT", "/api/v1/tenants/{name}/members/{user}",
              gate->Wrap(Access::kSelf, "member.set", bind(SetMember)), small);
  router->Add("DELETE", "/api/v1/tenants/{name}/members/{user}",
              gate->Wrap(Access::kSelf, "member.remove", bind(RemoveMember)), small);
  router->Add("GET", "/api/v1/tenants/{name}/quota",
              gate->Wrap(Access::kSelf, "quota.get", bind(GetQuota)));
  router->Add("PUT", "/api/v1/tenants/{name}/quota",
              gate->Wrap(Access::kSuperadmin, "quota.set", bind(SetQuota)), small);
  router->Add("GET", "/api/v1/users", gate->Wrap(Access::kSuperadmin, "user.list", bind(ListUsers)));
  router->Add("POST", "/api/v1/users",
              gate->Wrap(Access::kSuperadmin, "user.create", bind(CreateUser)), small);
  router->Add("PUT", "/api/v1/users/{name}/password",
              gate->Wrap(Access::kSelf, "user.password", bind(SetPassword)), small);
  router->Add("GET", "/api/v1/audit", gate->Wrap(Access::kSelf, "audit.list", bind(Audit)));
}

}  // namespace dlab
