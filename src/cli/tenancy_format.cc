#include "cli/tenancy_format.h"

#include <functional>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/table.h"

namespace dlab {
namespace {

using nlohmann::json;
using table::Field;
using table::OneLine;
using table::RenderTable;
using table::Text;
using table::Truncate;

constexpr size_t kMessageColumnWidth = 48;

using Rows = std::vector<std::vector<std::string>>;

// One row per element of `list`, with the columns `columns` picks from it.
std::string Table(std::vector<std::string> header, const json& list,
                  const std::function<std::vector<std::string>(const json&)>& columns) {
  Rows rows = {std::move(header)};
  if (list.is_array()) {
    for (const json& item : list) rows.push_back(columns(item));
  }
  return RenderTable(rows);
}

std::string YesNo(const json& value) { return value == json(true) ? "yes" : "no"; }

std::string Limit(const json& value) { return value.is_null() ? "unlimited" : Text(value); }

// A whoami's tenants with the roles: "default (admin), vision (member)".
std::string TenantRoles(const json& tenants) {
  if (!tenants.is_array() || tenants.empty()) return "-";
  std::vector<std::string> out;
  for (const json& t : tenants)
    out.push_back(absl::StrCat(Text(t, "name"), " (", Text(t, "role"), ")"));
  return absl::StrJoin(out, ", ");
}

// Every GPU type the quota limits or uses, in order, each once whatever its case.
std::vector<std::string> GpuTypes(const json& limits, const json& used) {
  std::vector<std::string> types;
  std::set<std::string> seen;
  for (const json* by_type : {&Field(limits, "gpus_by_type"), &Field(used, "gpus_by_type")}) {
    if (!by_type->is_object()) continue;
    for (const auto& [type, count] : by_type->items()) {
      if (seen.insert(absl::AsciiStrToLower(type)).second) types.push_back(type);
    }
  }
  return types;
}

// The value of `type` in a gpus_by_type map, matched case-insensitively.
const json& ByType(const json& by_type, const std::string& type) {
  static const json kNull;
  if (!by_type.is_object()) return kNull;
  for (const auto& [name, count] : by_type.items()) {
    if (absl::EqualsIgnoreCase(name, type)) return count;
  }
  return kNull;
}

}  // namespace

std::string FormatWhoami(const json& whoami) {
  std::string user = Text(whoami, "user");
  if (Field(whoami, "superadmin") == json(true)) absl::StrAppend(&user, " (superadmin)");
  const json& key = Field(whoami, "key_id");
  std::string tenant = Text(whoami, "tenant");
  if (!Field(whoami, "role").is_null())
    absl::StrAppend(&tenant, " (role ", Text(whoami, "role"), ")");
  return absl::StrCat("User:        ", user, "\n",                                             //
                      "Access key:  ", key.is_null() ? "- (login session)" : Text(key), "\n",  //
                      "Tenant:      ", tenant, "\n",                                           //
                      "Tenants:     ", TenantRoles(Field(whoami, "tenants")), "\n");
}

std::string FormatNewKey(const json& key) {
  return absl::StrCat(
      "Access key id:      ", Text(key, "id"), "\n",  //
      "Secret access key:  ", Text(key, "secret"), "\n",
      "The secret is shown only this once: store it now. Use the key with DLAB_ACCESS_KEY_ID and\n"
      "DLAB_SECRET_ACCESS_KEY, or access_key_id and secret_access_key in the config file.\n");
}

std::string FormatKeyTable(const json& keys) {
  return Table({"ID", "NAME", "USER", "CREATED", "STATE"}, keys, [](const json& key) {
    const json& revoked = Field(key, "revoke_time");
    bool active = Field(key, "active") != json(false) && revoked.is_null();
    return std::vector<std::string>{
        Text(key, "id"), Text(key, "name"), Text(key, "user"), Text(key, "create_time"),
        active ? "active" : absl::StrCat("revoked ", revoked.is_null() ? "" : Text(revoked))};
  });
}

std::string FormatTenantTable(const json& tenants) {
  return Table({"NAME", "CREATED"}, tenants, [](const json& t) {
    return std::vector<std::string>{Text(t, "name"), Text(t, "create_time")};
  });
}

std::string FormatMemberTable(const json& members) {
  return Table({"USER", "ROLE"}, members, [](const json& m) {
    return std::vector<std::string>{Text(m, "user"), Text(m, "role")};
  });
}

std::string FormatUserTable(const json& users) {
  return Table({"NAME", "SUPERADMIN", "CREATED"}, users, [](const json& u) {
    return std::vector<std::string>{Text(u, "name"), YesNo(Field(u, "superadmin")),
                                    Text(u, "create_time")};
  });
}

std::string FormatQuota(const json& quota) {
  const json& limits = Field(quota, "limits");
  const json& used = Field(quota, "used");
  Rows rows = {{"RESOURCE", "USED", "LIMIT"}};
  auto row = [&](std::string name, const json& in_use, const json& limit) {
    rows.push_back({std::move(name), Text(in_use), Limit(limit)});
  };
  row("GPUS", Field(used, "gpus"), Field(limits, "gpus"));
  for (const std::string& type : GpuTypes(limits, used)) {
    const json& in_use = ByType(Field(used, "gpus_by_type"), type);
    row(absl::StrCat("GPUS ", type), in_use.is_null() ? json(0) : in_use,
        ByType(Field(limits, "gpus_by_type"), type));
  }
  row("CPUS", Field(used, "cpus"), Field(limits, "cpus"));
  row("MEMORY", Field(used, "memory"), Field(limits, "memory"));
  row("RUNNING JOBS", Field(used, "running_jobs"), Field(limits, "running_jobs"));
  row("QUEUED JOBS", Field(used, "queued_jobs"), Field(limits, "queued_jobs"));
  return absl::StrCat("Quota of tenant ", Text(quota, "tenant"), "\n", RenderTable(rows));
}

std::string FormatAuditTable(const json& records) {
  return Table({"TIME", "USER", "KEY", "TENANT", "ACTION", "TARGET", "STATUS", "REMOTE", "MESSAGE"},
               records, [](const json& r) {
                 std::string message = OneLine(Text(r, "message"));
                 return std::vector<std::string>{
                     Text(r, "time"),
                     Text(r, "user"),
                     Text(r, "key_id"),
                     Text(r, "tenant"),
                     Text(r, "action"),
                     Text(r, "target"),
                     Text(r, "status"),
                     Text(r, "remote"),
                     message.empty() ? "-" : Truncate(message, kMessageColumnWidth)};
               });
}

}  // namespace dlab
