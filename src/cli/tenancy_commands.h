// The `dlab` subcommands of identities and tenancy (issue 4): login and logout (which create and
// revoke the CLI's access key and keep it in the config file), whoami, access keys, tenants and
// their members, users and passwords, quotas and the audit trail. Like commands.h, each is a
// function over a CommandContext; failures come back as Status values. Not thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/command_support.h"
#include "nlohmann/json.hpp"

namespace dlab {

// Where a password comes from when it is not asked for on the terminal.
struct PasswordSource {
  bool from_stdin = false;          // --password-stdin: the first line of stdin
  std::optional<std::string> file;  // --password-file: the first line of the file
};

struct LoginOptions {
  std::optional<std::string> user;      // default: asked for on the terminal
  PasswordSource password;              // default: asked for on the terminal
  std::optional<std::string> key_name;  // default "cli@<hostname>"
  std::string config_path;              // where the key is saved
  std::optional<std::string> tenant;    // --tenant: saved in the config file too
  bool environment_has_key = false;     // $DLAB_ACCESS_KEY_ID is set and wins over the file
};
// Signs in with user name and password (a session), creates an access key with it, saves the
// server URL and the key (and --tenant) in the config file, signs the session out, and checks
// the key with whoami. Unauthenticated for a wrong user or password (the server's message).
absl::Status Login(const CommandContext& ctx, const LoginOptions& options);

struct LogoutOptions {
  std::string config_path;
};
// Revokes the access key of the config file and removes it from there. A key the server does not
// know (or knows as revoked) is removed too; when the server cannot be reached the file is left
// as it is and the error returned.
absl::Status Logout(const CommandContext& ctx, const LogoutOptions& options);

absl::Status Whoami(const CommandContext& ctx, const FormatOptions& options);

struct KeyCreateOptions {
  std::optional<std::string> name;  // default "cli@<hostname>"
  OutputFormat format = OutputFormat::kText;
};
absl::Status CreateKey(const CommandContext& ctx, const KeyCreateOptions& options);

struct KeyListOptions {
  std::optional<std::string> user;  // another user's keys (admins)
  OutputFormat format = OutputFormat::kText;
};
absl::Status ListKeys(const CommandContext& ctx, const KeyListOptions& options);

struct NameOptions {
  std::string name;  // a key id, tenant or user name
  OutputFormat format = OutputFormat::kText;
};
absl::Status RevokeKey(const CommandContext& ctx, const NameOptions& options);

absl::Status CreateTenant(const CommandContext& ctx, const NameOptions& options);
absl::Status ListTenants(const CommandContext& ctx, const FormatOptions& options);

// Members of the tenant chosen with --tenant ($DLAB_TENANT, the config file), else of the
// caller's current tenant (whoami).
absl::Status ListMembers(const CommandContext& ctx, const FormatOptions& options);
struct MemberOptions {
  std::string user;
  std::string role;  // admin, member or viewer
  OutputFormat format = OutputFormat::kText;
};
absl::Status SetMember(const CommandContext& ctx, const MemberOptions& options);
absl::Status RemoveMember(const CommandContext& ctx, const MemberOptions& options);

struct UserCreateOptions {
  std::string name;
  bool superadmin = false;
  PasswordSource password;  // default: asked for twice on the terminal
  OutputFormat format = OutputFormat::kText;
};
absl::Status CreateUser(const CommandContext& ctx, const UserCreateOptions& options);
absl::Status ListUsers(const CommandContext& ctx, const FormatOptions& options);

// Changes the caller's password: asks for the current one and the new one twice.
absl::Status ChangePassword(const CommandContext& ctx);

// The quota and usage of the tenant (chosen as for members).
absl::Status ShowQuota(const CommandContext& ctx, const FormatOptions& options);

// Changes to some limits of a quota; "none" clears a limit (unlimited).
struct QuotaChanges {
  std::optional<std::string> gpus;          // a whole number
  std::vector<std::string> gpu_types;       // "TYPE=N" or "TYPE=none"
  std::optional<std::string> cpus;          // "16", "0.5", "500m"
  std::optional<std::string> memory;        // "64Gi"
  std::optional<std::string> running_jobs;  // a whole number
  std::optional<std::string> queued_jobs;   // a whole number
  OutputFormat format = OutputFormat::kText;
};
// `limits` (a quota's "limits") with the changes made; the others kept. A GPU type matches an
// existing one whatever its case. InvalidArgument naming the flag for a bad value, or when no
// change is given.
absl::StatusOr<nlohmann::json> ApplyQuotaChanges(const nlohmann::json& limits,
                                                 const QuotaChanges& changes);
// Reads the quota, applies the changes and writes it back; prints the new quota.
absl::Status SetQuota(const CommandContext& ctx, const QuotaChanges& changes);

struct AuditOptions {
  int limit = 50;
  std::optional<std::string> tenant;  // only this tenant's records
  OutputFormat format = OutputFormat::kText;
};
absl::Status ShowAudit(const CommandContext& ctx, const AuditOptions& options);

}  // namespace dlab
