#include "cli/tenancy_commands.h"

#include <unistd.h>

#include <climits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/config_file.h"
#include "cli/credentials.h"
#include "cli/table.h"
#include "cli/tenancy_format.h"
#include "common/file_util.h"
#include "common/quantity.h"

namespace dlab {
namespace {

using nlohmann::json;

constexpr char kSessionCookie[] = "dlab_session";
constexpr char kClearLimit[] = "none";
constexpr int kMaxAuditPageSize = 200;
// How dlabd's 401 for a key it does not know (or knows as revoked) begins (docs/auth.md).
constexpr char kUnknownKeyMessage[] = "unknown or revoked access key";

std::string UserPath(const std::string& user) { return absl::StrCat("/api/v1/users/", user); }
std::string TenantPath(const std::string& tenant, absl::string_view suffix = "") {
  return absl::StrCat("/api/v1/tenants/", tenant, suffix);
}

// The string field `key` of a reply; Internal naming what is missing otherwise.
absl::StatusOr<std::string> StringField(const json& reply, const char* key,
                                        absl::string_view what) {
  if (reply.is_object() && reply.contains(key) && (*reply.find(key)).is_string()) {
    return reply[key].get<std::string>();
  }
  return absl::InternalError(absl::StrCat("dlabd's answer to ", what, " has no ", key));
}

// The same status with `context` before its message.
absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, status.message()));
}

std::string DefaultKeyName() {
  char host[HOST_NAME_MAX + 1] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "cli";
  return absl::StrCat("cli@", host);
}

absl::StatusOr<std::string> NonEmpty(absl::StatusOr<std::string> value, absl::string_view what) {
  if (value.ok() && value->empty())
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  return value;
}

// A password from --password-stdin or --password-file, or asked for on the terminal (twice when
// `confirm`, for a new password).
absl::StatusOr<std::string> ReadPassword(const CommandContext& ctx, const PasswordSource& source,
                                         absl::string_view prompt, bool confirm) {
  if (source.from_stdin) return NonEmpty(ctx.prompter->ReadStdinLine(), "the password on stdin");
  if (source.file) {
    auto text = ReadFile(*source.file);
    if (!text.ok()) return text.status();
    return NonEmpty(FirstLine(*text), absl::StrCat("the password in ", *source.file));
  }
  if (!ctx.prompter->Interactive()) {
    return absl::InvalidArgumentError(
        "no terminal to ask for the password on: give it with --password-stdin");
  }
  auto password = NonEmpty(ctx.prompter->Ask(prompt, Prompter::Echo::kHidden), "the password");
  if (!password.ok() || !confirm) return password;
  auto again = ctx.prompter->Ask("Repeat it: ", Prompter::Echo::kHidden);
  if (!again.ok()) return again.status();
  if (*again != *password) return absl::InvalidArgumentError("the passwords do not match");
  return password;
}

// The tenant chosen with --tenant ($DLAB_TENANT, the config file), else the caller's current one.
absl::StatusOr<std::string> CurrentTenant(const CommandContext& ctx) {
  const std::optional<std::string>& chosen = ctx.client->options().tenant;
  if (chosen && !chosen->empty()) return *chosen;
  auto me = ctx.client->GetJson("/api/v1/whoami");
  if (!me.ok()) return me.status();
  const json& tenant = me->value("tenant", json());
  if (!tenant.is_string() || tenant.get<std::string>().empty()) {
    return absl::FailedPreconditionError(
        "you are not a member of any tenant; name one with --tenant");
  }
  return tenant.get<std::string>();
}

// A whole number for a limit, or null for "none".
absl::StatusOr<json> CountLimit(absl::string_view flag, absl::string_view value) {
  if (value == kClearLimit) return json();
  int count = 0;
  if (!value.empty() && absl::ascii_isdigit(value[0]) && absl::SimpleAtoi(value, &count) &&
      count >= 0) {
    return json(count);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " ", value, ": expected a whole number, or `none` for no limit"));
}

// A quantity (CPUs, memory) as given, once `parse` accepts it, or null for "none".
template <typename Parse>
absl::StatusOr<json> QuantityLimit(absl::string_view flag, const std::string& value, Parse parse) {
  if (value == kClearLimit) return json();
  auto parsed = parse(value);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", value, ": ", parsed.status().message()));
  }
  return json(value);
}

// A login session: its requests carry the session cookie and the CSRF token.
struct Session {
  HttpClient* client;
  NameValues headers;  // Cookie and X-CSRF-Token

  absl::StatusOr<json> Send(std::string_view method, std::string_view path, const json& body) {
    HttpRequest request = JsonRequest(method, path, body);
    request.headers = headers;
    return client->SendJson(request);
  }
  void End() { (void)Send("POST", "/api/v1/logout", json()); }
};

absl::StatusOr<Session> StartSession(HttpClient* client, const std::string& user,
                                     const std::string& password) {
  HttpRequest request =
      JsonRequest("POST", "/api/v1/login", json{{"user", user}, {"password", password}});
  auto response = client->Send(request);
  if (!response.ok()) return response.status();
  json reply = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  auto csrf = StringField(reply, "csrf_token", "the login");
  if (!csrf.ok()) return csrf.status();
  std::optional<std::string> cookie = SetCookieValue(*response, kSessionCookie);
  if (!cookie) return absl::InternalError("dlabd answered the login without a session cookie");
  return Session{
      .client = client,
      .headers = {{"Cookie", absl::StrCat(kSessionCookie, "=", *cookie)}, {"X-CSRF-Token", *csrf}}};
}

// "tenant vision, role admin", or "no tenant".
std::string TenantAndRole(const json& whoami) {
  if (!table::Field(whoami, "tenant").is_string()) return "no tenant";
  return absl::StrCat("tenant ", table::Text(whoami, "tenant"), ", role ",
                      table::Text(whoami, "role"));
}

absl::StatusOr<std::string> AskUser(const CommandContext& ctx,
                                    const std::optional<std::string>& user) {
  if (user && !user->empty()) return *user;
  if (!ctx.prompter->Interactive()) {
    return absl::InvalidArgumentError("no terminal to ask for the user name on: give --user");
  }
  return NonEmpty(ctx.prompter->Ask("User: ", Prompter::Echo::kShown), "the user name");
}

}  // namespace

absl::Status Login(const CommandContext& ctx, const LoginOptions& options) {
  if (options.config_path.empty()) {
    return absl::FailedPreconditionError(
        "cannot tell where to save the access key: set HOME or XDG_CONFIG_HOME");
  }
  // The key this login replaces in the config file, if any: it stays valid, so say so.
  std::optional<std::string> previous_key;
  if (auto config = ReadConfigFile(options.config_path); config.ok()) {
    auto key = CredentialsFromConfig(*config);
    if (key.ok() && *key) previous_key = (*key)->key_id;
  }
  auto user = AskUser(ctx, options.user);
  if (!user.ok()) return user.status();
  auto password = ReadPassword(ctx, options.password, "Password: ", /*confirm=*/false);
  if (!password.ok()) return password.status();

  HttpClient unsigned_client(ctx.client->base_url());
  auto session = StartSession(&unsigned_client, *user, *password);
  if (!session.ok()) return session.status();
  auto key = session->Send("POST", "/api/v1/keys",
                           json{{"name", options.key_name.value_or(DefaultKeyName())}});
  if (!key.ok()) {
    session->End();
    return WithContext(key.status(), "signed in, but could not create an access key: ");
  }
  auto key_id = StringField(*key, "id", "creating an access key");
  auto secret = StringField(*key, "secret", "creating an access key");
  if (!key_id.ok() || !secret.ok()) {
    session->End();
    return key_id.ok() ? secret.status() : key_id.status();
  }

  ConfigUpdate update{.set = {{kConfigUrlKey, ctx.client->base_url()},
                              {kConfigKeyIdKey, *key_id},
                              {kConfigSecretKey, *secret}}};
  if (options.tenant && !options.tenant->empty()) {
    update.set.emplace_back(kConfigTenantKey, *options.tenant);
  }
  if (absl::Status saved = UpdateConfigFile(options.config_path, update); !saved.ok()) {
    (void)session->Send("DELETE", absl::StrCat("/api/v1/keys/", *key_id), json());
    session->End();
    return WithContext(
        saved, absl::StrCat("could not save access key ", *key_id, " (revoked it again): "));
  }
  session->End();

  HttpClient signed_client(ctx.client->base_url(),
                           {.credentials = Credentials{.key_id = *key_id, .secret = *secret},
                            .tenant = ctx.client->options().tenant});
  auto me = signed_client.GetJson("/api/v1/whoami");
  if (!me.ok()) {
    return WithContext(me.status(), absl::StrCat("saved access key ", *key_id, " to ",
                                                 options.config_path, ", but using it failed: "));
  }
  *ctx.out << "Logged in as " << table::Text(*me, "user") << " (" << TenantAndRole(*me) << "); key "
           << *key_id << " saved to " << options.config_path << "\n";
  if (previous_key && *previous_key != *key_id) {
    *ctx.out << "Note: the key this replaced in the config file, " << *previous_key
             << ", is still valid; revoke it with `dlab keys revoke " << *previous_key
             << "` if nothing else uses it.\n";
  }
  if (options.environment_has_key) {
    *ctx.out << "Note: DLAB_ACCESS_KEY_ID and DLAB_SECRET_ACCESS_KEY are set and take precedence "
                "over the saved key.\n";
  }
  return absl::OkStatus();
}

absl::Status Logout(const CommandContext& ctx, const LogoutOptions& options) {
  if (options.config_path.empty()) {
    return absl::FailedPreconditionError(
        "cannot tell where the config file is: set HOME or XDG_CONFIG_HOME");
  }
  auto config = ReadConfigFile(options.config_path);
  if (!config.ok()) return config.status();
  auto key = CredentialsFromConfig(*config);
  if (!key.ok()) return key.status();
  if (!*key) {
    *ctx.out << "Not logged in: " << options.config_path << " holds no access key\n";
    return absl::OkStatus();
  }
  // No tenant: revoking one's own key does not depend on one.
  HttpClient client(ctx.client->base_url(), {.credentials = **key});
  auto revoked = client.DeleteJson(absl::StrCat("/api/v1/keys/", (*key)->key_id));
  // Other 401s (a clock out of the window, say) do not mean the key is gone: keep it then.
  bool already_gone = absl::IsNotFound(revoked.status()) ||
                      (absl::IsUnauthenticated(revoked.status()) &&
                       absl::StartsWith(revoked.status().message(), kUnknownKeyMessage));
  if (!revoked.ok() && !already_gone) {
    return WithContext(revoked.status(),
                       absl::StrCat("could not revoke access key ", (*key)->key_id,
                                    " (it stays in ", options.config_path, "): "));
  }
  if (absl::Status removed =
          UpdateConfigFile(options.config_path, {.remove = {kConfigKeyIdKey, kConfigSecretKey}});
      !removed.ok()) {
    return removed;
  }
  if (already_gone) {
    *ctx.out << "Access key " << (*key)->key_id << " was unknown to dlabd or revoked already ("
             << revoked.status().message() << "); removed it from " << options.config_path << "\n";
  } else {
    *ctx.out << "Revoked access key " << (*key)->key_id << " and removed it from "
             << options.config_path << "\n";
  }
  return absl::OkStatus();
}

absl::Status Whoami(const CommandContext& ctx, const FormatOptions& options) {
  return PrintReply(ctx, options.format, ctx.client->GetJson("/api/v1/whoami"), FormatWhoami);
}

absl::Status CreateKey(const CommandContext& ctx, const KeyCreateOptions& options) {
  return PrintReply(
      ctx, options.format,
      ctx.client->PostJson("/api/v1/keys", json{{"name", options.name.value_or(DefaultKeyName())}}),
      FormatNewKey);
}

absl::Status ListKeys(const CommandContext& ctx, const KeyListOptions& options) {
  NameValues query;
  if (options.user) query.emplace_back("user", *options.user);
  return PrintReply(ctx, options.format, ctx.client->GetJson("/api/v1/keys", std::move(query)),
                    [](const json& reply) { return FormatKeyTable(reply.value("keys", json())); });
}

absl::Status RevokeKey(const CommandContext& ctx, const NameOptions& options) {
  return PrintReply(
      ctx, options.format, ctx.client->DeleteJson(absl::StrCat("/api/v1/keys/", options.name)),
      [&](const json&) { return absl::StrCat("Revoked access key ", options.name, "\n"); });
}

absl::Status CreateTenant(const CommandContext& ctx, const NameOptions& options) {
  return PrintReply(
      ctx, options.format, ctx.client->PostJson("/api/v1/tenants", json{{"name", options.name}}),
      [&](const json&) { return absl::StrCat("Created tenant ", options.name, "\n"); });
}

absl::Status ListTenants(const CommandContext& ctx, const FormatOptions& options) {
  return PrintReply(
      ctx, options.format, ctx.client->GetJson("/api/v1/tenants"),
      [](const json& reply) { return FormatTenantTable(reply.value("tenants", json())); });
}

absl::Status ListMembers(const CommandContext& ctx, const FormatOptions& options) {
  auto tenant = CurrentTenant(ctx);
  if (!tenant.ok()) return tenant.status();
  return PrintReply(
      ctx, options.format, ctx.client->GetJson(TenantPath(*tenant, "/members")),
      [](const json& reply) { return FormatMemberTable(reply.value("members", json())); });
}

absl::Status SetMember(const CommandContext& ctx, const MemberOptions& options) {
  auto tenant = CurrentTenant(ctx);
  if (!tenant.ok()) return tenant.status();
  return PrintReply(
      ctx, options.format,
      ctx.client->PutJson(TenantPath(*tenant, absl::StrCat("/members/", options.user)),
                          json{{"role", options.role}}),
      [&](const json& member) {
        const json& role = table::Field(member, "role");
        return absl::StrCat(options.user, " is ",
                            role.is_string() ? table::Text(role) : options.role, " of tenant ",
                            *tenant, "\n");
      });
}

absl::Status RemoveMember(const CommandContext& ctx, const MemberOptions& options) {
  auto tenant = CurrentTenant(ctx);
  if (!tenant.ok()) return tenant.status();
  auto removed =
      ctx.client->DeleteJson(TenantPath(*tenant, absl::StrCat("/members/", options.user)));
  if (!removed.ok()) return removed.status();
  *ctx.out << "Removed " << options.user << " from tenant " << *tenant << "\n";
  return absl::OkStatus();
}

absl::Status CreateUser(const CommandContext& ctx, const UserCreateOptions& options) {
  auto password = ReadPassword(ctx, options.password,
                               absl::StrCat("Password for ", options.name, ": "), /*confirm=*/true);
  if (!password.ok()) return password.status();
  return PrintReply(ctx, options.format,
                    ctx.client->PostJson("/api/v1/users", json{{"name", options.name},
                                                               {"password", *password},
                                                               {"superadmin", options.superadmin}}),
                    [&](const json&) {
                      return absl::StrCat("Created user ", options.name,
                                          options.superadmin ? " (superadmin)" : "", "\n");
                    });
}

absl::Status ListUsers(const CommandContext& ctx, const FormatOptions& options) {
  return PrintReply(
      ctx, options.format, ctx.client->GetJson("/api/v1/users"),
      [](const json& reply) { return FormatUserTable(reply.value("users", json())); });
}

absl::Status ChangePassword(const CommandContext& ctx) {
  if (!ctx.prompter->Interactive()) {
    return absl::FailedPreconditionError("dlab passwd asks for the passwords on a terminal");
  }
  auto me = ctx.client->GetJson("/api/v1/whoami");
  if (!me.ok()) return me.status();
  auto user = StringField(*me, "user", "whoami");
  if (!user.ok()) return user.status();
  auto current =
      ctx.prompter->Ask(absl::StrCat("Current password of ", *user, ": "), Prompter::Echo::kHidden);
  if (!current.ok()) return current.status();
  auto password = ReadPassword(ctx, PasswordSource{}, "New password: ", /*confirm=*/true);
  if (!password.ok()) return password.status();
  auto changed = ctx.client->PutJson(UserPath(*user) + "/password",
                                     json{{"password", *password}, {"current_password", *current}});
  if (!changed.ok()) return changed.status();
  *ctx.out << "Changed the password of " << *user << "\n";
  return absl::OkStatus();
}

absl::Status ShowQuota(const CommandContext& ctx, const FormatOptions& options) {
  auto tenant = CurrentTenant(ctx);
  if (!tenant.ok()) return tenant.status();
  return PrintReply(ctx, options.format, ctx.client->GetJson(TenantPath(*tenant, "/quota")),
                    FormatQuota);
}

absl::StatusOr<json> ApplyQuotaChanges(const json& limits, const QuotaChanges& changes) {
  if (!changes.gpus && changes.gpu_types.empty() && !changes.cpus && !changes.memory &&
      !changes.running_jobs && !changes.queued_jobs) {
    return absl::InvalidArgumentError(
        "nothing to change: give --gpus, --gpu-type, --cpus, --memory, --running-jobs or "
        "--queued-jobs");
  }
  json out = limits.is_object() ? limits : json::object();
  auto set = [&](const char* key, absl::StatusOr<json> value) -> absl::Status {
    if (!value.ok()) return value.status();
    out[key] = *std::move(value);
    return absl::OkStatus();
  };
  for (const auto& [flag, key, value] :
       {std::tuple{"--gpus", "gpus", &changes.gpus},
        std::tuple{"--running-jobs", "running_jobs", &changes.running_jobs},
        std::tuple{"--queued-jobs", "queued_jobs", &changes.queued_jobs}}) {
    if (!*value) continue;
    if (absl::Status s = set(key, CountLimit(flag, **value)); !s.ok()) return s;
  }
  if (changes.cpus) {
    absl::Status s = set("cpus", QuantityLimit("--cpus", *changes.cpus, ParseCpuMillis));
    if (!s.ok()) return s;
  }
  if (changes.memory) {
    absl::Status s = set("memory", QuantityLimit("--memory", *changes.memory, ParseMemoryBytes));
    if (!s.ok()) return s;
  }
  json by_type = out.value("gpus_by_type", json::object());
  if (!by_type.is_object()) by_type = json::object();
  for (const std::string& change : changes.gpu_types) {
    std::pair<std::string, std::string> kv = absl::StrSplit(change, absl::MaxSplits('=', 1));
    if (kv.first.empty() || change.find('=') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--gpu-type ", change, ": expected TYPE=N or TYPE=none, e.g. --gpu-type H100=2"));
    }
    auto count = CountLimit(absl::StrCat("--gpu-type ", kv.first, "="), kv.second);
    if (!count.ok()) return count.status();
    for (auto it = by_type.begin(); it != by_type.end();) {
      it = absl::EqualsIgnoreCase(it.key(), kv.first) ? by_type.erase(it) : std::next(it);
    }
    if (!count->is_null()) by_type[kv.first] = *count;
  }
  if (!changes.gpu_types.empty() || out.contains("gpus_by_type")) {
    out["gpus_by_type"] = by_type.empty() ? json() : by_type;
  }
  return out;
}

absl::Status SetQuota(const CommandContext& ctx, const QuotaChanges& changes) {
  auto tenant = CurrentTenant(ctx);
  if (!tenant.ok()) return tenant.status();
  std::string path = TenantPath(*tenant, "/quota");
  auto current = ctx.client->GetJson(path);
  if (!current.ok()) return current.status();
  auto limits = ApplyQuotaChanges(current->value("limits", json::object()), changes);
  if (!limits.ok()) return limits.status();
  return PrintReply(ctx, changes.format, ctx.client->PutJson(path, *limits), FormatQuota);
}

absl::Status ShowAudit(const CommandContext& ctx, const AuditOptions& options) {
  // Reading a tenant's trail acts in that tenant, where the caller may be an admin.
  std::optional<HttpClient> scoped;
  CommandContext in_tenant = ctx;
  NameValues query;
  if (options.tenant) {
    HttpClientOptions client_options = ctx.client->options();
    client_options.tenant = *options.tenant;
    scoped.emplace(ctx.client->base_url(), client_options);
    in_tenant.client = &*scoped;
    query.emplace_back("tenant", *options.tenant);
  }
  auto records =
      ListPaged(in_tenant, "/api/v1/audit", "records", query, options.limit, kMaxAuditPageSize);
  if (!records.ok()) return records.status();
  return PrintReply(ctx, options.format, json{{"records", *records}},
                    [](const json& reply) { return FormatAuditTable(reply["records"]); });
}

}  // namespace dlab
