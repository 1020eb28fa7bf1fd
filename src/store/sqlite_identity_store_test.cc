#include <gtest/gtest.h>
#include <sqlite3.h>

#include "common/testing/temp_dir.h"
#include "store/identity_store.h"
#include "store/store.h"

namespace dlab {
namespace {

class IdentityStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (temp_.path() / "dlab.db").string();
    auto store = IdentityStore::OpenSqlite(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  User NewUser(const std::string& name, bool superadmin = false) {
    auto user = store_->CreateUser({.name = name, .password_hash = "h", .superadmin = superadmin});
    EXPECT_TRUE(user.ok()) << user.status();
    return user.ok() ? *user : User{};
  }

  testing::TempDir temp_;
  std::string path_;
  std::unique_ptr<IdentityStore> store_;
};

TEST_F(IdentityStoreTest, TenantsUsersAndMemberships) {
  auto def = store_->GetTenantById(kDefaultTenantId);
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->name, "default");
  auto team = store_->CreateTenant("team");
  ASSERT_TRUE(team.ok());
  EXPECT_EQ(store_->CreateTenant("team").status().code(), absl::StatusCode::kAlreadyExists);
  User alice = NewUser("alice");
  EXPECT_EQ(store_->CreateUser({.name = "alice"}).status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->SetMembership(team->id, alice.id, Role::kViewer).ok());
  ASSERT_TRUE(store_->SetMembership(kDefaultTenantId, alice.id, Role::kMember).ok());
  ASSERT_TRUE(store_->SetMembership(team->id, alice.id, Role::kAdmin).ok());  // a change
  auto mine = store_->UserMemberships(alice.id);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 2u);
  EXPECT_EQ((*mine)[0].tenant, "default");  // first: the oldest tenant
  EXPECT_EQ((*mine)[1].role, Role::kAdmin);
  EXPECT_EQ(store_->SetMembership(99, alice.id, Role::kMember).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->RemoveMembership(team->id, alice.id).ok());
  EXPECT_EQ(store_->RemoveMembership(team->id, alice.id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->TenantMembers(team->id)->size(), 0u);

  TenantQuota quota{.gpus = 4, .gpus_by_type = {{"H100", 2}}, .running_jobs = 3};
  ASSERT_TRUE(store_->SetQuota(team->id, quota).ok());
  EXPECT_EQ(store_->GetTenant("team")->quota, quota);
}

TEST_F(IdentityStoreTest, AccessKeysRevokeOnceAndSessionsExpire) {
  User bob = NewUser("bob");
  absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  ASSERT_TRUE(store_
                  ->CreateAccessKey({.id = "AK1",
                                     .user_id = bob.id,
                                     .name = "laptop",
                                     .sealed_secret = "v1:x",
                                     .create_time = t0})
                  .ok());
  auto key = store_->GetAccessKey("AK1");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->user, "bob");
  EXPECT_FALSE(key->revoke_time.has_value());
  ASSERT_TRUE(store_->RevokeAccessKey("AK1", t0 + absl::Hours(1)).ok());
  auto again = store_->RevokeAccessKey("AK1", t0 + absl::Hours(2));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->revoke_time, t0 + absl::Hours(1));
  EXPECT_EQ(store_->RevokeAccessKey("AK2", t0).status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(store_
                  ->CreateSession({.id_hash = "s1",
                                   .user_id = bob.id,
                                   .csrf_token = "c",
                                   .create_time = t0,
                                   .expire_time = t0 + absl::Hours(1)})
                  .ok());
  EXPECT_TRUE(store_->GetSession("s1", t0 + absl::Minutes(59)).ok());
  EXPECT_EQ(store_->GetSession("s1", t0 + absl::Hours(2)).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteUserSessions(bob.id).ok());
  EXPECT_FALSE(store_->GetSession("s1", t0).ok());
}

TEST_F(IdentityStoreTest, AuditIsNewestFirstPerTenantWithACursor) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_
                    ->AppendAudit({.time = absl::Now(),
                                   .user = "u",
                                   .tenant_id = i % 2 == 0 ? 1 : 2,
                                   .action = "job.submit",
                                   .target = absl::StrCat("/api/v1/jobs/", i),
                                   .status = 201})
                    .ok());
  }
  auto all = store_->ListAudit({.limit = 2});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].target, "/api/v1/jobs/4");
  auto next = store_->ListAudit({.before_id = (*all)[1].id, .limit = 10});
  ASSERT_EQ(next->size(), 3u);
  auto tenant2 = store_->ListAudit({.tenant_id = 2});
  ASSERT_EQ(tenant2->size(), 2u);
  EXPECT_EQ((*tenant2)[0].target, "/api/v1/jobs/3");
}

// A database from before tenants (schema version 2) keeps its jobs; they belong to "default".
TEST(IdentityMigrationTest, JobsFromBeforeTenantsBelongToDefault) {
  testing::TempDir temp;
  std::string path = (temp.path() / "dlab.db").string();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* v2 =
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, spec TEXT "
        "NOT NULL, snapshot TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, reason TEXT NOT NULL "
        "DEFAULT '', priority INTEGER NOT NULL, submit_time INTEGER NOT NULL, update_time "
        "INTEGER NOT NULL, start_time INTEGER, end_time INTEGER, exit_code INTEGER, attempts "
        "INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0, "
        "idempotency_key TEXT UNIQUE);"
        "CREATE INDEX jobs_active ON jobs(state, priority DESC, submit_time, id);"
        "CREATE TABLE job_labels (job_id INTEGER NOT NULL REFERENCES jobs(id), key TEXT NOT "
        "NULL, value TEXT NOT NULL, PRIMARY KEY (job_id, key));"
        "CREATE INDEX job_labels_kv ON job_labels(key, value, job_id);"
        "CREATE TABLE attempts (job_id INTEGER NOT NULL REFERENCES jobs(id), number INTEGER NOT "
        "NULL, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', allocation TEXT NOT NULL, "
        "dir TEXT NOT NULL, create_time INTEGER NOT NULL, start_time INTEGER, end_time INTEGER, "
        "exit_code INTEGER, limit_notes TEXT NOT NULL DEFAULT '[]', details TEXT NOT NULL "
        "DEFAULT '{}', PRIMARY KEY (job_id, number));"
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL "
        "REFERENCES jobs(id), time INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL, "
        "reason TEXT NOT NULL);"
        "INSERT INTO jobs (name, spec, state, priority, submit_time, update_time) VALUES ('old', "
        "'{\"name\":\"old\",\"command\":[\"true\"]}', 'SUCCEEDED', 0, 1, 1);"
        "PRAGMA user_version = 2;";
    ASSERT_EQ(sqlite3_exec(db, v2, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  auto store = Store::OpenSqlite(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto job = (*store)->GetJob(1);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->spec.name, "old");
  EXPECT_EQ(job->tenant_id, kDefaultTenantId);
  EXPECT_EQ((*store)->ListJobs({.tenant_id = kDefaultTenantId})->size(), 1u);
  EXPECT_EQ((*store)->ListJobs({.tenant_id = 2})->size(), 0u);
  auto identity = IdentityStore::OpenSqlite(path);
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ((*identity)->GetTenant("default")->id, kDefaultTenantId);
}

}  // namespace
}  // namespace dlab
