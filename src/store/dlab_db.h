// The database dlab.db: its pragmas and its migrations, shared by the stores that keep their
// tables in it (Store: jobs; IdentityStore: tenants, users, keys, sessions, audit). Each store
// opens its own connection; the first to open migrates.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/sqlite_db.h"

namespace dlab {

absl::StatusOr<std::unique_ptr<SqliteDb>> OpenDlabDb(const std::string& path);

}  // namespace dlab
