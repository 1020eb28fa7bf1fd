#include "store/dlab_db.h"

namespace dlab {
namespace {

const char* const kPragmas[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                                "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000"};

// Versioned migrations: migration i brings user_version from i to i+1. Append only.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  spec TEXT NOT NULL,
  snapshot TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  priority INTEGER NOT NULL,
  submit_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  start_time INTEGER,
  end_time INTEGER,
  exit_code INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  idempotency_key TEXT UNIQUE
);
CREATE INDEX jobs_active ON jobs(state, priority DESC, submit_time, id);
CREATE TABLE job_labels (
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (job_id, key)
);
CREATE INDEX job_labels_kv ON job_labels(key, value, job_id);
CREATE TABLE attempts (
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  number INTEGER NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  allocation TEXT NOT NULL,
  dir TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  start_time INTEGER,
  end_time INTEGER,
  exit_code INTEGER,
  limit_notes TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (job_id, number)
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  time INTEGER NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX events_job ON events(job_id, id);
)sql",
    // 2: what an attempt resumed from and how it (and each of its tasks) failed, as JSON.
    R"sql(
ALTER TABLE attempts ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
)sql",
    // 3: tenants, users, their memberships and access keys, login sessions, the audit trail;
    // every job belongs to a tenant (jobs from before belong to "default") and has an owner.
    R"sql(
CREATE TABLE tenants (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  create_time INTEGER NOT NULL,
  quota TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO tenants (id, name, create_time) VALUES (1, 'default', CAST(strftime('%s', 'now') AS INTEGER) * 1000000);
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL DEFAULT '',
  superadmin INTEGER NOT NULL DEFAULT 0,
  create_time INTEGER NOT NULL
);
CREATE TABLE memberships (
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  role TEXT NOT NULL,
  PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);
CREATE TABLE access_keys (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  name TEXT NOT NULL DEFAULT '',
  sealed_secret TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  revoke_time INTEGER
);
CREATE INDEX access_keys_user ON access_keys(user_id);
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  csrf_token TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  expire_time INTEGER NOT NULL
);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  user TEXT NOT NULL,
  key_id TEXT NOT NULL,
  tenant_id INTEGER NOT NULL,
  tenant TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  status INTEGER NOT NULL,
  message TEXT NOT NULL,
  remote TEXT NOT NULL
);
CREATE INDEX audit_tenant ON audit(tenant_id, id);
CREATE TABLE snapshot_tenants (
  snapshot TEXT NOT NULL,
  tenant_id INTEGER NOT NULL,
  PRIMARY KEY (snapshot, tenant_id)
);
ALTER TABLE jobs ADD COLUMN tenant_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_tenant ON jobs(tenant_id, id);
CREATE INDEX jobs_tenant_state ON jobs(tenant_id, state);
)sql",
};


}  // namespace

absl::StatusOr<std::unique_ptr<SqliteDb>> OpenDlabDb(const std::string& path) {
  return SqliteDb::Open(
      path, {.name = "store", .file = "database", .pragmas = kPragmas, .migrations = kMigrations});
}

}  // namespace dlab
