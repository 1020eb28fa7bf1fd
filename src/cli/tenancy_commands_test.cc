#include "cli/tenancy_commands.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "auth/signing.h"
#include "cli/config_file.h"
#include "cli/testing/fake_http_server.h"
#include "common/file_util.h"
#include "common/testing/temp_dir.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::FakeHttpServer;
using testing::FakeReply;
using testing::JsonReply;
using testing::ReceivedRequest;

// Answers from a script instead of a terminal.
class ScriptedPrompter final : public Prompter {
 public:
  ScriptedPrompter(bool interactive, std::deque<std::string> answers)
      : interactive_(interactive), answers_(std::move(answers)) {}
  bool Interactive() override { return interactive_; }
  absl::StatusOr<std::string> Ask(absl::string_view prompt, Echo echo) override {
    prompts.push_back(absl::StrCat(prompt, echo == Echo::kHidden ? "(hidden)" : ""));
    return Next();
  }
  absl::StatusOr<std::string> ReadStdinLine() override {
    auto text = Next();
    if (!text.ok()) return text;
    return FirstLine(*text);
  }

  std::vector<std::string> prompts;

 private:
  absl::StatusOr<std::string> Next() {
    if (answers_.empty()) return absl::CancelledError("no answer (end of input)");
    std::string answer = answers_.front();
    answers_.pop_front();
    return answer;
  }
  bool interactive_;
  std::deque<std::string> answers_;
};

constexpr char kKeyId[] = "AKNEWKEY0000000000001";
constexpr char kSecret[] = "bmV3LWtleS1zZWNyZXQtYmFzZTY0dXJsLXNlY3JldA";

// A dlabd stand-in for the login flow: a password login that sets a session cookie and a CSRF
// token, key creation and logout that require both, and whoami that requires a request signed
// with the key it created.
class FakeDlabd {
 public:
  FakeDlabd() : server_([this](const ReceivedRequest& request) { return Handle(request); }) {}
  std::string url() const { return server_.url(); }
  std::vector<ReceivedRequest> requests() const { return server_.requests(); }
  std::vector<std::string> Calls() const {
    std::vector<std::string> calls;
    for (const ReceivedRequest& r : server_.requests()) {
      calls.push_back(absl::StrCat(r.method, " ", r.path));
    }
    return calls;
  }

  std::function<FakeReply(const ReceivedRequest&)> fallback = [](const ReceivedRequest&) {
    return JsonReply(404, R"({"error": {"code": "NOT_FOUND", "message": "no route"}})");
  };

 private:
  static bool HasSession(const ReceivedRequest& r) {
    return r.Header("cookie") == "dlab_session=c00kie" && r.Header("x-csrf-token") == "csrf-1";
  }

  FakeReply Handle(const ReceivedRequest& r) {
    if (r.path == "/api/v1/login") {
      json body = json::parse(r.body, nullptr, false);
      if (body != json{{"user", "admin"}, {"password", "pw"}}) {
        return JsonReply(401, R"({"error": {"code": "UNAUTHENTICATED",
                                            "message": "wrong user name or password"}})");
      }
      FakeReply reply = JsonReply(200, R"({"user": "admin", "superadmin": true,
          "csrf_token": "csrf-1", "tenants": [{"name": "default", "role": "admin"}]})");
      reply.headers.push_back("Set-Cookie: dlab_session=c00kie; HttpOnly; SameSite=Strict; Path=/");
      return reply;
    }
    if (r.method == "POST" && r.path == "/api/v1/keys" && HasSession(r)) {
      return JsonReply(201, json{{"id", kKeyId},
                                 {"secret", kSecret},
                                 {"name", "laptop"},
                                 {"user", "admin"},
                                 {"active", true}}
                                .dump());
    }
    if (r.path == "/api/v1/logout" && HasSession(r)) return FakeReply{.status = 204};
    if (r.method == "DELETE" && r.path == absl::StrCat("/api/v1/keys/", kKeyId) && HasSession(r)) {
      return JsonReply(200, "{}");
    }
    if (!r.Header("authorization").empty()) {
      auto verified = auth::Verify(
          r.ToSign(), r.body,
          [](absl::string_view id) -> std::optional<std::string> {
            if (id == kKeyId) return kSecret;
            return std::nullopt;
          },
          absl::Now(), &replays_);
      if (!verified.ok()) {
        return JsonReply(401, json{{"error", {{"message", verified.status().message()}}}}.dump());
      }
      if (r.path == "/api/v1/whoami") {
        std::string tenant =
            r.Header("x-dlab-tenant").empty() ? "default" : r.Header("x-dlab-tenant");
        return JsonReply(200, json{{"user", "admin"},
                                   {"superadmin", true},
                                   {"key_id", kKeyId},
                                   {"tenant", tenant},
                                   {"role", "admin"}}
                                  .dump());
      }
    }
    return fallback(r);
  }

  auth::ReplayCache replays_;
  FakeHttpServer server_;
};

class TenancyCommandsTest : public ::testing::Test {
 protected:
  CommandContext Context(HttpClient* client, Prompter* prompter) {
    return CommandContext{.client = client, .out = &out_, .prompter = prompter};
  }
  std::string ConfigPath() const { return (dir_.path() / "xdg" / "dlab" / "config").string(); }
  json Config() const {
    auto config = ReadConfigFile(ConfigPath());
    EXPECT_TRUE(config.ok()) << config.status();
    return config.ok() ? config->values : json();
  }

  testing::TempDir dir_;
  std::ostringstream out_;
};

TEST_F(TenancyCommandsTest, LoginCreatesAKeyWithASessionAndSavesIt) {
  FakeDlabd dlabd;
  fs::create_directories(fs::path(ConfigPath()).parent_path());
  std::ofstream(ConfigPath()) << "# mine\neditor: vim\nurl: http://elsewhere:1\n";
  HttpClient client(dlabd.url());
  ScriptedPrompter prompter(/*interactive=*/true, {"admin", "pw"});
  absl::Status status =
      Login(Context(&client, &prompter), {.key_name = "laptop", .config_path = ConfigPath()});
  ASSERT_TRUE(status.ok()) << status;

  EXPECT_EQ(prompter.prompts, (std::vector<std::string>{"User: ", "Password: (hidden)"}));
  EXPECT_EQ(dlabd.Calls(), (std::vector<std::string>{"POST /api/v1/login", "POST /api/v1/keys",
                                                     "POST /api/v1/logout", "GET /api/v1/whoami"}));
  EXPECT_EQ(json::parse(dlabd.requests()[1].body), (json{{"name", "laptop"}}));
  EXPECT_EQ(Config(), (json{{"editor", "vim"},
                            {"url", dlabd.url()},
                            {"access_key_id", kKeyId},
                            {"secret_access_key", kSecret}}));
  struct stat st;
  ASSERT_EQ(::stat(ConfigPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(absl::StartsWith(ReadFile(ConfigPath()).value_or(""), "# mine\n"));
  EXPECT_EQ(out_.str(), absl::StrCat("Logged in as admin (tenant default, role admin); key ",
                                     kKeyId, " saved to ", ConfigPath(), "\n"));
}

TEST_F(TenancyCommandsTest, LoginSaysThatTheKeyItReplacesIsStillValid) {
  FakeDlabd dlabd;
  ASSERT_TRUE(UpdateConfigFile(ConfigPath(),
                               {.set = {{"access_key_id", "AKOLD"}, {"secret_access_key", "old"}}})
                  .ok());
  HttpClient client(dlabd.url());
  ScriptedPrompter prompter(/*interactive=*/true, {"pw"});
  ASSERT_TRUE(
      Login(Context(&client, &prompter), {.user = "admin", .config_path = ConfigPath()}).ok());
  EXPECT_EQ(Config().value("access_key_id", ""), kKeyId);
  EXPECT_NE(out_.str().find("AKOLD, is still valid; revoke it with `dlab keys revoke AKOLD`"),
            std::string::npos)
      << out_.str();
}

TEST_F(TenancyCommandsTest, LoginSavesTheTenantAndPasswordMayComeFromStdin) {
  FakeDlabd dlabd;
  HttpClient client(dlabd.url(), {.tenant = "vision"});
  ScriptedPrompter prompter(/*interactive=*/false, {"pw\n"});
  absl::Status status = Login(Context(&client, &prompter), {.user = "admin",
                                                            .password = {.from_stdin = true},
                                                            .config_path = ConfigPath(),
                                                            .tenant = "vision"});
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(Config().value("tenant", ""), "vision");
  EXPECT_EQ(dlabd.requests().back().Header("x-dlab-tenant"), "vision");
  EXPECT_NE(out_.str().find("(tenant vision, role admin)"), std::string::npos) << out_.str();
}

TEST_F(TenancyCommandsTest, WrongPasswordSavesNothing) {
  FakeDlabd dlabd;
  HttpClient client(dlabd.url());
  ScriptedPrompter prompter(/*interactive=*/true, {"wrong"});
  absl::Status status =
      Login(Context(&client, &prompter), {.user = "admin", .config_path = ConfigPath()});
  EXPECT_EQ(status, absl::UnauthenticatedError("wrong user name or password"));
  EXPECT_FALSE(fs::exists(ConfigPath()));
}

TEST_F(TenancyCommandsTest, LoginWithoutATerminalNeedsTheUserAndPassword) {
  FakeDlabd dlabd;
  HttpClient client(dlabd.url());
  ScriptedPrompter prompter(/*interactive=*/false, {});
  EXPECT_EQ(Login(Context(&client, &prompter), {.config_path = ConfigPath()}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Login(Context(&client, &prompter), {.user = "admin", .config_path = ConfigPath()}).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(dlabd.requests().empty());
}

TEST_F(TenancyCommandsTest, AKeyThatCannotBeSavedIsRevokedAgain) {
  FakeDlabd dlabd;
  std::ofstream(dir_.path() / "xdg") << "a file where the config directory should be";
  HttpClient client(dlabd.url());
  ScriptedPrompter prompter(/*interactive=*/false, {"pw"});
  absl::Status status =
      Login(Context(&client, &prompter),
            {.user = "admin", .password = {.from_stdin = true}, .config_path = ConfigPath()});
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("(revoked it again)"), absl::string_view::npos) << status;
  EXPECT_EQ(dlabd.Calls(), (std::vector<std::string>{"POST /api/v1/login", "POST /api/v1/keys",
                                                     absl::StrCat("DELETE /api/v1/keys/", kKeyId),
                                                     "POST /api/v1/logout"}));
}

TEST_F(TenancyCommandsTest, LogoutRevokesTheSavedKeyAndForgetsIt) {
  FakeDlabd dlabd;
  dlabd.fallback = [](const ReceivedRequest& r) {
    if (r.method == "DELETE" && r.path == absl::StrCat("/api/v1/keys/", kKeyId)) {
      return JsonReply(200, R"({"active": false})");
    }
    return JsonReply(404, "{}");
  };
  ASSERT_TRUE(UpdateConfigFile(ConfigPath(), {.set = {{"url", dlabd.url()},
                                                      {"access_key_id", kKeyId},
                                                      {"secret_access_key", kSecret},
                                                      {"tenant", "vision"}}})
                  .ok());
  HttpClient client(dlabd.url());
  ScriptedPrompter prompter(false, {});
  absl::Status status = Logout(Context(&client, &prompter), {.config_path = ConfigPath()});
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(dlabd.Calls(),
            (std::vector<std::string>{absl::StrCat("DELETE /api/v1/keys/", kKeyId)}));
  EXPECT_FALSE(dlabd.requests()[0].Header("authorization").empty());  // signed with that key
  EXPECT_EQ(Config(), (json{{"url", dlabd.url()}, {"tenant", "vision"}}));
  EXPECT_EQ(out_.str(), absl::StrCat("Revoked access key ", kKeyId, " and removed it from ",
                                     ConfigPath(), "\n"));

  out_.str("");
  ASSERT_TRUE(Logout(Context(&client, &prompter), {.config_path = ConfigPath()}).ok());
  EXPECT_EQ(out_.str(), absl::StrCat("Not logged in: ", ConfigPath(), " holds no access key\n"));
}

TEST_F(TenancyCommandsTest, LogoutForgetsAKeyTheServerDoesNotKnowButKeepsItOnOther401s) {
  FakeDlabd dlabd;
  std::string message;
  dlabd.fallback = [&message](const ReceivedRequest&) {
    return JsonReply(401, json{{"error", {{"message", message}}}}.dump());
  };
  HttpClient client(dlabd.url());
  ScriptedPrompter prompter(false, {});
  auto save_key = [&] {
    ASSERT_TRUE(UpdateConfigFile(ConfigPath(), {.set = {{"access_key_id", kKeyId},
                                                        {"secret_access_key", kSecret}}})
                    .ok());
  };

  save_key();
  message = "request time 20261122T101500Z is outside the 5 minute window (server time ...)";
  absl::Status status = Logout(Context(&client, &prompter), {.config_path = ConfigPath()});
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(status.message().find("(it stays in " + ConfigPath() + ")"), absl::string_view::npos)
      << status;
  EXPECT_EQ(Config().value("access_key_id", ""), kKeyId);

  message = absl::StrCat("unknown or revoked access key '", kKeyId, "'");
  ASSERT_TRUE(Logout(Context(&client, &prompter), {.config_path = ConfigPath()}).ok());
  EXPECT_FALSE(Config().contains("access_key_id"));
  EXPECT_NE(out_.str().find("was unknown to dlabd or revoked already"), std::string::npos)
      << out_.str();
}

TEST_F(TenancyCommandsTest, LogoutKeepsTheKeyWhenTheServerIsUnreachable) {
  ASSERT_TRUE(UpdateConfigFile(ConfigPath(),
                               {.set = {{"access_key_id", kKeyId}, {"secret_access_key", kSecret}}})
                  .ok());
  HttpClient client("http://127.0.0.1:1");
  ScriptedPrompter prompter(false, {});
  absl::Status status = Logout(Context(&client, &prompter), {.config_path = ConfigPath()});
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Config().value("access_key_id", ""), kKeyId);
}

TEST_F(TenancyCommandsTest, MembersActInTheCurrentTenantFromWhoami) {
  FakeDlabd dlabd;
  dlabd.fallback = [](const ReceivedRequest& r) {
    if (r.method == "PUT") return JsonReply(200, R"({"user": "bob smith", "role": "viewer"})");
    return FakeReply{.status = 204};
  };
  HttpClient client(dlabd.url(), {.credentials = Credentials{kKeyId, kSecret}});
  ScriptedPrompter prompter(false, {});
  ASSERT_TRUE(SetMember(Context(&client, &prompter), {.user = "bob smith", .role = "viewer"}).ok());
  EXPECT_EQ(dlabd.Calls(),
            (std::vector<std::string>{"GET /api/v1/whoami",
                                      "PUT /api/v1/tenants/default/members/bob smith"}));
  EXPECT_EQ(json::parse(dlabd.requests()[1].body), (json{{"role", "viewer"}}));
  EXPECT_EQ(out_.str(), "bob smith is viewer of tenant default\n");

  HttpClient in_vision(dlabd.url(),
                       {.credentials = Credentials{kKeyId, kSecret}, .tenant = "vision"});
  out_.str("");
  ASSERT_TRUE(RemoveMember(Context(&in_vision, &prompter), {.user = "bob"}).ok());
  EXPECT_EQ(dlabd.Calls().back(), "DELETE /api/v1/tenants/vision/members/bob");
  EXPECT_EQ(out_.str(), "Removed bob from tenant vision\n");
}

TEST(QuotaChangesTest, SetsTheGivenLimitsAndKeepsTheOthers) {
  json limits = json::parse(R"({"gpus": 4, "gpus_by_type": {"H100": 2, "A100": 1}, "cpus": "16",
                                "memory": "64Gi", "running_jobs": 10, "queued_jobs": 100})");
  auto changed = ApplyQuotaChanges(limits, {.gpus = "8",
                                            .gpu_types = {"h100=3", "A100=none", "L4=0"},
                                            .memory = "none",
                                            .queued_jobs = "none"});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, json::parse(R"({"gpus": 8, "gpus_by_type": {"h100": 3, "L4": 0},
                                      "cpus": "16", "memory": null, "running_jobs": 10,
                                      "queued_jobs": null})"));

  changed = ApplyQuotaChanges(json(), {.gpu_types = {"H100=none"}, .cpus = "500m"});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, json::parse(R"({"gpus_by_type": null, "cpus": "500m"})"));
}

TEST(QuotaChangesTest, BadValuesNameTheFlag) {
  auto error = [](const QuotaChanges& changes) {
    return std::string(ApplyQuotaChanges(json::object(), changes).status().message());
  };
  EXPECT_EQ(error({}),
            "nothing to change: give --gpus, --gpu-type, --cpus, --memory, --running-jobs or "
            "--queued-jobs");
  EXPECT_EQ(error({.gpus = "-1"}), "--gpus -1: expected a whole number, or `none` for no limit");
  EXPECT_EQ(error({.running_jobs = "many"}),
            "--running-jobs many: expected a whole number, or `none` for no limit");
  EXPECT_TRUE(absl::StartsWith(error({.gpu_types = {"H100"}}), "--gpu-type H100: expected TYPE=N"));
  EXPECT_TRUE(absl::StartsWith(error({.cpus = "lots"}), "--cpus lots: "))
      << error({.cpus = "lots"});
  EXPECT_TRUE(absl::StartsWith(error({.memory = "64 apples"}), "--memory 64 apples: "));
}

TEST_F(TenancyCommandsTest, QuotaSetReadsThenWritesTheWholeQuota) {
  FakeDlabd dlabd;
  json put_body;
  dlabd.fallback = [&put_body](const ReceivedRequest& r) {
    if (r.method == "GET") {
      return JsonReply(200, R"({"tenant": "vision", "limits": {"gpus": 4, "cpus": "16"},
                               "used": {"gpus": 1, "cpus": "2"}})");
    }
    put_body = json::parse(r.body, nullptr, false);
    return JsonReply(
        200, json{{"tenant", "vision"}, {"limits", put_body}, {"used", json::object()}}.dump());
  };
  HttpClient client(dlabd.url(), {.credentials = Credentials{kKeyId, kSecret}, .tenant = "vision"});
  ScriptedPrompter prompter(false, {});
  absl::Status status =
      SetQuota(Context(&client, &prompter), {.gpu_types = {"H100=2"}, .running_jobs = "3"});
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(dlabd.Calls(), (std::vector<std::string>{"GET /api/v1/tenants/vision/quota",
                                                     "PUT /api/v1/tenants/vision/quota"}));
  EXPECT_EQ(put_body, json::parse(R"({"gpus": 4, "cpus": "16", "gpus_by_type": {"H100": 2},
                                      "running_jobs": 3})"));
  EXPECT_NE(out_.str().find("GPUS H100     0     2\n"), std::string::npos) << out_.str();
}

TEST_F(TenancyCommandsTest, AuditPagesAndActsInTheTenantAsked) {
  FakeDlabd dlabd;
  dlabd.fallback = [](const ReceivedRequest& r) {
    bool second = !r.query.empty() && r.query.back().first == "cursor";
    json records = json::array();
    for (int i = 0; i < 2; ++i) {
      records.push_back({{"id", second ? 2 - i : 4 - i}, {"action", "job.submit"}});
    }
    return JsonReply(
        200, json{{"records", records}, {"next_cursor", second ? json() : json("c2")}}.dump());
  };
  HttpClient client(dlabd.url(), {.credentials = Credentials{kKeyId, kSecret}});
  ScriptedPrompter prompter(false, {});
  absl::Status status = ShowAudit(Context(&client, &prompter),
                                  {.limit = 3, .tenant = "vision", .format = OutputFormat::kJson});
  ASSERT_TRUE(status.ok()) << status;
  std::vector<ReceivedRequest> requests = dlabd.requests();
  ASSERT_EQ(requests.size(), 2u);
  using Query = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(requests[0].query, (Query{{"limit", "3"}, {"tenant", "vision"}}));
  EXPECT_EQ(requests[1].query, (Query{{"limit", "1"}, {"tenant", "vision"}, {"cursor", "c2"}}));
  EXPECT_EQ(requests[1].Header("x-dlab-tenant"), "vision");
  json printed = json::parse(out_.str());
  EXPECT_EQ(printed["records"].size(), 3u);
  EXPECT_EQ(printed["records"][2]["id"], 2);
}

TEST_F(TenancyCommandsTest, CreateUserAsksForThePasswordTwice) {
  FakeDlabd dlabd;
  dlabd.fallback = [](const ReceivedRequest& r) { return JsonReply(201, r.body); };
  HttpClient client(dlabd.url(), {.credentials = Credentials{kKeyId, kSecret}});
  ScriptedPrompter mismatch(true, {"one", "two"});
  EXPECT_EQ(CreateUser(Context(&client, &mismatch), {.name = "bob"}),
            absl::InvalidArgumentError("the passwords do not match"));
  EXPECT_TRUE(dlabd.requests().empty());

  ScriptedPrompter prompter(true, {"s3cret", "s3cret"});
  ASSERT_TRUE(CreateUser(Context(&client, &prompter), {.name = "bob", .superadmin = true}).ok());
  EXPECT_EQ(prompter.prompts,
            (std::vector<std::string>{"Password for bob: (hidden)", "Repeat it: (hidden)"}));
  EXPECT_EQ(json::parse(dlabd.requests()[0].body),
            (json{{"name", "bob"}, {"password", "s3cret"}, {"superadmin", true}}));
  EXPECT_EQ(out_.str(), "Created user bob (superadmin)\n");
}

TEST_F(TenancyCommandsTest, PasswdSendsTheCurrentAndTheNewPassword) {
  FakeDlabd dlabd;
  dlabd.fallback = [](const ReceivedRequest&) { return FakeReply{.status = 204}; };
  HttpClient client(dlabd.url(), {.credentials = Credentials{kKeyId, kSecret}});
  ScriptedPrompter prompter(true, {"old", "new", "new"});
  ASSERT_TRUE(ChangePassword(Context(&client, &prompter)).ok());
  EXPECT_EQ(dlabd.Calls().back(), "PUT /api/v1/users/admin/password");
  EXPECT_EQ(json::parse(dlabd.requests().back().body),
            (json{{"password", "new"}, {"current_password", "old"}}));
  EXPECT_EQ(out_.str(), "Changed the password of admin\n");
}

}  // namespace
}  // namespace dlab
