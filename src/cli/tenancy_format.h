// How the CLI shows identities, tenancy, quotas and the audit trail to people: the block of
// `dlab whoami`, the tables of `dlab keys ls`, `tenants ls`, `members ls`, `users ls`,
// `dlab quota` and `dlab audit`, and a new key. Works on the JSON the REST API returns and
// tolerates missing fields. Pure functions, thread-safe.
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace dlab {

// User (and superadmin), access key (or "- (login session)"), tenant and role, and every
// tenant the user belongs to with the role there.
std::string FormatWhoami(const nlohmann::json& whoami);

// A key just created: its id and secret, and that the secret is not shown again.
std::string FormatNewKey(const nlohmann::json& key);

// Columns ID NAME USER CREATED STATE (active, or revoked TIME), one row per key.
std::string FormatKeyTable(const nlohmann::json& keys);

// Columns NAME CREATED.
std::string FormatTenantTable(const nlohmann::json& tenants);

// Columns USER ROLE.
std::string FormatMemberTable(const nlohmann::json& members);

// Columns NAME SUPERADMIN CREATED.
std::string FormatUserTable(const nlohmann::json& users);

// "Quota of tenant T" and the columns RESOURCE USED LIMIT, rows GPUS, one GPUS <TYPE> per GPU
// type with a limit or in use, CPUS, MEMORY, RUNNING JOBS, QUEUED JOBS; a limit that is absent
// or null is "unlimited".
std::string FormatQuota(const nlohmann::json& quota);

// Columns TIME USER KEY TENANT ACTION TARGET STATUS REMOTE MESSAGE, one row per record, oldest
// last as given; long messages cut.
std::string FormatAuditTable(const nlohmann::json& records);

}  // namespace dlab
