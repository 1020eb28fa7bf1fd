#include "cli/http_client.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "auth/signing.h"
#include "cli/testing/fake_http_server.h"
#include "common/testing/temp_dir.h"
#include "common/uri_encode.h"

namespace dlab {
namespace {

using nlohmann::json;
using testing::FakeHttpServer;
using testing::FakeReply;
using testing::ReceivedRequest;

const Credentials kKey{.key_id = "AKTEST0000000000000001",
                       .secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYw"};

auth::SecretLookup LookupFor(const Credentials& key) {
  return [key](absl::string_view id) -> std::optional<std::string> {
    if (id == key.key_id) return key.secret;
    return std::nullopt;
  };
}

// What the server verifies: the request as received, checked against the key's secret.
absl::StatusOr<std::string> VerifyReceived(const ReceivedRequest& request, const Credentials& key,
                                           auth::ReplayCache* replays) {
  return auth::Verify(request.ToSign(), request.body, LookupFor(key), absl::Now(), replays);
}

TEST(HttpClientTest, ServerErrorMessageAndCode) {
  absl::Status s = StatusFromHttpError(
      400, R"({"error": {"code": "INVALID_ARGUMENT", "message": "resources.gpus: too many"}})");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "resources.gpus: too many");
  EXPECT_EQ(StatusFromHttpError(404, R"({"error": {"message": "job 9 not found"}})"),
            absl::NotFoundError("job 9 not found"));
  EXPECT_EQ(StatusFromHttpError(409, R"({"error": {"message": "job 9 already ended"}})").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusFromHttpError(503, "").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromHttpError(500, "boom\n"), absl::InternalError("boom"));
}

TEST(HttpClientTest, AuthErrorsKeepTheServerMessage) {
  EXPECT_EQ(StatusFromHttpError(
                401, R"({"error": {"code": "UNAUTHENTICATED", "message": "unsigned request"}})"),
            absl::UnauthenticatedError("unsigned request"));
  EXPECT_EQ(StatusFromHttpError(403, R"({"error": {"message": "needs the admin role"}})"),
            absl::PermissionDeniedError("needs the admin role"));
}

TEST(HttpClientTest, TooLargeSaysSo) {
  absl::Status s = StatusFromHttpError(413, R"({"error": {"message": "body over 1 MiB"}})");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("too large"), absl::string_view::npos) << s;
}

TEST(HttpClientTest, UnreachableServerIsUnavailableAndNamesTheUrl) {
  HttpClient client("http://127.0.0.1:1");
  absl::StatusOr<HttpResponse> response = client.Send(HttpRequest{.path = "/healthz"});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(response.status().message().rfind("cannot reach dlabd at http://127.0.0.1:1: ", 0), 0u)
      << response.status();
}

TEST(HttpClientTest, UrlEncode) { EXPECT_EQ(UriEncode("a b/c=d~"), "a%20b%2Fc%3Dd~"); }

// The prepared request, read back as a server reads the wire, verifies against the secret.
TEST(HttpClientTest, PreparedRequestVerifiesWithTheSameSecret) {
  HttpClient client("http://gpu-box:8080", {.credentials = kKey, .tenant = "vision team"});
  HttpRequest request{.method = "PUT",
                      .path = "/api/v1/tenants/vision team/members/bob",
                      .query = {{"label", "a=b"}, {"note", "x&y+z"}},
                      .content_type = "application/json",
                      .body = R"({"role":"member"})"};
  absl::Time now = absl::Now();
  auto wire = client.Prepare(request, request.body, now, "nonce-1");
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_EQ(wire->url,
            "http://gpu-box:8080/api/v1/tenants/vision%20team/members/bob"
            "?label=a%3Db&note=x%26y%2Bz");

  ReceivedRequest received{.method = "PUT", .body = request.body};
  std::string target = wire->url.substr(std::string("http://gpu-box:8080").size());
  received.path = testing::PercentDecode(target.substr(0, target.find('?')), false);
  for (absl::string_view pair : absl::StrSplit(target.substr(target.find('?') + 1), '&')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    received.query.emplace_back(testing::PercentDecode(kv.first, true),
                                testing::PercentDecode(kv.second, true));
  }
  for (const std::string& line : wire->headers) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(": ", 1));
    received.headers[absl::AsciiStrToLower(kv.first)] = kv.second;
  }
  EXPECT_EQ(received.Header("host"), "gpu-box:8080");
  EXPECT_EQ(received.Header("x-dlab-tenant"), "vision team");
  EXPECT_EQ(received.Header("x-dlab-nonce"), "nonce-1");
  EXPECT_EQ(received.Header("x-dlab-date"), auth::FormatSigningTime(now));
  EXPECT_TRUE(absl::StrContains(
      received.Header("authorization"),
      "SignedHeaders=content-type;host;x-dlab-content-sha256;x-dlab-date;x-dlab-nonce;"
      "x-dlab-tenant,"))
      << received.Header("authorization");

  auto verified = VerifyReceived(received, kKey, nullptr);
  EXPECT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified.value_or(""), kKey.key_id);

  Credentials other = kKey;
  other.secret = "another secret";
  EXPECT_EQ(VerifyReceived(received, other, nullptr).status(),
            absl::UnauthenticatedError("signature does not match"));
  received.headers["x-dlab-tenant"] = "someone else";  // the tenant is protected too
  EXPECT_EQ(VerifyReceived(received, kKey, nullptr).status(),
            absl::UnauthenticatedError("signature does not match"));
}

TEST(HttpClientTest, HostHeaderFollowsTheBaseUrl) {
  auto host = [](const std::string& base) {
    HttpClient client(base, {.credentials = kKey});
    auto wire = client.Prepare(HttpRequest{.path = "/api/v1/whoami"}, "", absl::Now(), "n");
    EXPECT_TRUE(wire.ok()) << wire.status();
    for (const std::string& line : wire.value_or(WireRequest{}).headers) {
      if (absl::StartsWith(line, "host: ")) return line.substr(6);
    }
    return std::string("(none)");
  };
  EXPECT_EQ(host("http://127.0.0.1:8080"), "127.0.0.1:8080");
  EXPECT_EQ(host("https://dlab.example.com"), "dlab.example.com");
  EXPECT_EQ(host("http://[::1]:9000"), "[::1]:9000");
  EXPECT_EQ(host("gpu-box:8080"), "gpu-box:8080");
}

TEST(HttpClientTest, UnsignedRequestsCarryNoSignature) {
  HttpClient client("http://gpu-box:8080", {.tenant = "vision"});
  auto wire = client.Prepare(HttpRequest{.path = "/api/v1/jobs"}, "", absl::Now(), "n");
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_EQ(wire->headers,
            (std::vector<std::string>{"host: gpu-box:8080", "x-dlab-tenant: vision"}));
}

TEST(HttpClientTest, HeaderValuesWithLineBreaksAreRefused) {
  HttpClient client("http://gpu-box:8080", {.credentials = kKey, .tenant = "a\r\nX-Evil: 1"});
  auto wire = client.Prepare(HttpRequest{.path = "/api/v1/jobs"}, "", absl::Now(), "n");
  EXPECT_EQ(wire.status().code(), absl::StatusCode::kInvalidArgument) << wire.status();
}

// Requests as libcurl really sends them verify on the server side, for every method and kind of
// body, and two identical requests in a row are not taken for a replay.
TEST(HttpClientTest, SignedRequestsOnTheWireVerify) {
  FakeHttpServer server([](const ReceivedRequest& request) {
    if (request.method == "DELETE") return FakeReply{.status = 204};
    return testing::JsonReply(200, R"({"ok": true})");
  });
  HttpClient client(server.url(), {.credentials = kKey, .tenant = "vision"});
  ASSERT_TRUE(client.GetJson("/api/v1/jobs", {{"label", "a=b"}, {"state", "RUNNING"}}).ok());
  ASSERT_TRUE(client.GetJson("/api/v1/jobs", {{"label", "a=b"}, {"state", "RUNNING"}}).ok());
  ASSERT_TRUE(client.PostJson("/api/v1/keys", json{{"name", "laptop"}}).ok());
  ASSERT_TRUE(client.PutJson("/api/v1/tenants/vision/quota", json{{"gpus", 4}}).ok());
  auto deleted = client.DeleteJson("/api/v1/tenants/vision/members/bob smith");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->is_null());
  ASSERT_TRUE(
      client.Send(HttpRequest{.method = "HEAD", .path = "/api/v1/snapshots/sha256:ab"}).ok());
  dlab::testing::TempDir dir;
  std::string archive = (dir.path() / "code.tar.gz").string();
  std::ofstream(archive) << std::string(300000, 'x');
  ASSERT_TRUE(client
                  .Send(HttpRequest{.method = "POST",
                                    .path = "/api/v1/snapshots",
                                    .content_type = "application/gzip",
                                    .body_file = archive})
                  .ok());

  std::vector<ReceivedRequest> received = server.requests();
  ASSERT_EQ(received.size(), 7u);
  auth::ReplayCache replays;
  std::vector<std::string> methods;
  for (const ReceivedRequest& request : received) {
    methods.push_back(request.method);
    auto verified = VerifyReceived(request, kKey, &replays);
    EXPECT_TRUE(verified.ok()) << request.method << " " << request.target << ": "
                               << verified.status();
    EXPECT_EQ(request.Header("host"), absl::StrCat("127.0.0.1:", server.port()));
    EXPECT_EQ(request.Header("x-dlab-tenant"), "vision");
  }
  EXPECT_EQ(methods,
            (std::vector<std::string>{"GET", "GET", "POST", "PUT", "DELETE", "HEAD", "POST"}));
  EXPECT_EQ(received[0].query, (std::vector<std::pair<std::string, std::string>>{
                                   {"label", "a=b"}, {"state", "RUNNING"}}));
  EXPECT_EQ(received[2].Header("content-type"), "application/json");
  EXPECT_EQ(received[3].body, R"({"gpus":4})");
  EXPECT_EQ(received[4].path, "/api/v1/tenants/vision/members/bob smith");
  EXPECT_EQ(received[5].path, "/api/v1/snapshots/sha256:ab");
  EXPECT_EQ(received[6].body.size(), 300000u);
  EXPECT_EQ(received[6].Header("content-type"), "application/gzip");
}

TEST(HttpClientTest, SessionHeadersAndCookiesAndAuthFailures) {
  FakeHttpServer server([](const ReceivedRequest& request) {
    if (request.path == "/api/v1/login") {
      FakeReply reply = testing::JsonReply(200, R"({"user": "admin", "csrf_token": "t0k"})");
      reply.headers.push_back("Set-Cookie: other=1; Path=/");
      reply.headers.push_back(
          "Set-Cookie: dlab_session=s3ss10n; HttpOnly; SameSite=Strict; Path=/");
      return reply;
    }
    if (request.Header("cookie") != "dlab_session=s3ss10n") {
      return testing::JsonReply(401, R"({"error": {"code": "UNAUTHENTICATED",
                                                   "message": "unsigned request: no session"}})");
    }
    return testing::JsonReply(403, R"({"error": {"message": "bad CSRF token"}})");
  });
  HttpClient client(server.url());
  auto login = client.Send(HttpRequest{.method = "POST", .path = "/api/v1/login"});
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(SetCookieValue(*login, "dlab_session"), "s3ss10n");
  EXPECT_EQ(SetCookieValue(*login, "missing"), std::nullopt);

  EXPECT_EQ(client.PostJson("/api/v1/keys", json::object()).status(),
            absl::UnauthenticatedError("unsigned request: no session"));
  auto with_session = client.SendJson(
      HttpRequest{.method = "POST",
                  .path = "/api/v1/keys",
                  .headers = {{"Cookie", "dlab_session=s3ss10n"}, {"X-CSRF-Token", "wrong"}}});
  EXPECT_EQ(with_session.status(), absl::PermissionDeniedError("bad CSRF token"));
  EXPECT_EQ(server.requests().back().Header("x-csrf-token"), "wrong");
  EXPECT_EQ(server.requests().back().Header("authorization"), "");
}

}  // namespace
}  // namespace dlab
