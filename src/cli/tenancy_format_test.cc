#include "cli/tenancy_format.h"

#include <gtest/gtest.h>

namespace dlab {
namespace {

using nlohmann::json;

TEST(TenancyFormatTest, Whoami) {
  EXPECT_EQ(FormatWhoami(json::parse(R"({
              "user": "alice", "superadmin": true, "key_id": "AKAAAA", "tenant": "vision",
              "role": "admin", "tenants": [{"name": "default", "role": "member"},
                                           {"name": "vision", "role": "admin"}]})")),
            "User:        alice (superadmin)\n"
            "Access key:  AKAAAA\n"
            "Tenant:      vision (role admin)\n"
            "Tenants:     default (member), vision (admin)\n");
  EXPECT_EQ(FormatWhoami(json::parse(R"({"user": "bob", "superadmin": false, "key_id": null,
                                         "tenant": null, "role": null, "tenants": []})")),
            "User:        bob\n"
            "Access key:  - (login session)\n"
            "Tenant:      -\n"
            "Tenants:     -\n");
}

TEST(TenancyFormatTest, NewKeyWarnsThatTheSecretIsShownOnce) {
  std::string text = FormatNewKey(json{{"id", "AKAAAA"}, {"secret", "s3cr3t"}});
  EXPECT_NE(text.find("Access key id:      AKAAAA\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Secret access key:  s3cr3t\n"), std::string::npos) << text;
  EXPECT_NE(text.find("shown only this once"), std::string::npos) << text;
}

TEST(TenancyFormatTest, KeyTableSaysWhichAreRevoked) {
  json keys = json::parse(R"([
    {"id": "AK1", "name": "laptop", "user": "alice", "create_time": "T1", "revoke_time": null,
     "active": true},
    {"id": "AK2", "name": "ci", "user": "alice", "create_time": "T2", "revoke_time": "T3",
     "active": false}])");
  EXPECT_EQ(FormatKeyTable(keys),
            "ID   NAME    USER   CREATED  STATE\n"
            "AK1  laptop  alice  T1       active\n"
            "AK2  ci      alice  T2       revoked T3\n");
}

TEST(TenancyFormatTest, TenantMemberAndUserTables) {
  EXPECT_EQ(FormatTenantTable(json::parse(R"([{"name": "default", "create_time": "T1"}])")),
            "NAME     CREATED\n"
            "default  T1\n");
  EXPECT_EQ(FormatMemberTable(json::parse(R"([{"user": "alice", "role": "admin"},
                                              {"user": "bob", "role": "viewer"}])")),
            "USER   ROLE\n"
            "alice  admin\n"
            "bob    viewer\n");
  EXPECT_EQ(FormatUserTable(json::parse(R"([{"name": "admin", "superadmin": true,
                                             "create_time": "T1"},
                                            {"name": "bob", "superadmin": false,
                                             "create_time": "T2"}])")),
            "NAME   SUPERADMIN  CREATED\n"
            "admin  yes         T1\n"
            "bob    no          T2\n");
}

TEST(TenancyFormatTest, QuotaShowsUseAgainstLimits) {
  json quota = json::parse(R"({"tenant": "a",
    "limits": {"gpus": 4, "gpus_by_type": {"H100": 2}, "cpus": "16", "memory": null,
               "running_jobs": 10},
    "used": {"gpus": 1, "gpus_by_type": {"h100": 1, "A100": 1}, "cpus": "2", "memory": "4Gi",
             "running_jobs": 1, "queued_jobs": 3}})");
  EXPECT_EQ(FormatQuota(quota),
            "Quota of tenant a\n"
            "RESOURCE      USED  LIMIT\n"
            "GPUS          1     4\n"
            "GPUS H100     1     2\n"
            "GPUS A100     1     unlimited\n"
            "CPUS          2     16\n"
            "MEMORY        4Gi   unlimited\n"
            "RUNNING JOBS  1     10\n"
            "QUEUED JOBS   3     unlimited\n");
}

TEST(TenancyFormatTest, AuditTable) {
  json records = json::parse(R"([
    {"id": 2, "time": "T2", "user": "bob", "key_id": null, "tenant": "a", "action": "job.cancel",
     "target": "job/7", "status": 403, "message": "needs the member role", "remote": "10.0.0.2"},
    {"id": 1, "time": "T1", "user": "alice", "key_id": "AK1", "tenant": "a",
     "action": "job.submit", "target": "job/7", "status": 201, "message": "",
     "remote": "10.0.0.1"}])");
  EXPECT_EQ(
      FormatAuditTable(records),
      "TIME  USER   KEY  TENANT  ACTION      TARGET  STATUS  REMOTE    MESSAGE\n"
      "T2    bob    -    a       job.cancel  job/7   403     10.0.0.2  needs the member role\n"
      "T1    alice  AK1  a       job.submit  job/7   201     10.0.0.1  -\n");
}

}  // namespace
}  // namespace dlab
