#include "auth/signing.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"

namespace dlab::auth {
namespace {

using nlohmann::json;

json Vectors() {
  std::ifstream in(std::string(DLAB_SOURCE_DIR) + "/tests/vectors/signing.json");
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

RequestToSign FromVector(const json& v) {
  RequestToSign r{.method = v["method"], .path = v["path"]};
  for (const json& q : v["query"]) r.query.emplace_back(q[0], q[1]);
  for (const auto& [name, value] : v["headers"].items()) r.headers[name] = value;
  return r;
}

std::vector<std::string> SignedNames(const json& v) {
  std::vector<std::string> names;
  for (const auto& [name, value] : v["headers"].items()) names.push_back(name);  // sorted
  return names;
}

TEST(SigningTest, MatchesTheIndependentlyComputedVectors) {
  json vectors = Vectors();
  ASSERT_GE(vectors.size(), 4u);
  for (const json& v : vectors) {
    RequestToSign r = FromVector(v);
    std::string canonical = CanonicalRequest(r, SignedNames(v));
    EXPECT_EQ(canonical, v["canonical_request"]) << v["name"];
    std::string sts = StringToSign(r.headers["x-dlab-date"], canonical);
    EXPECT_EQ(sts, v["string_to_sign"]) << v["name"];
    EXPECT_EQ(HmacSha256Hex(v["secret"].get<std::string>(), sts), v["signature"]) << v["name"];
    // The server accepts the vector's Authorization header at its own time.
    r.headers["authorization"] = v["authorization"];
    absl::Time when = *ParseSigningTime(r.headers["x-dlab-date"]);
    auto key = Verify(
        r, v["body"].get<std::string>(),
        [&](absl::string_view id) -> std::optional<std::string> {
          if (id == "AKTEST") return v["secret"].get<std::string>();
          return std::nullopt;
        },
        when + absl::Seconds(30), nullptr);
    EXPECT_TRUE(key.ok()) << v["name"] << ": " << key.status();
  }
}

class VerifyTest : public ::testing::Test {
 protected:
  RequestToSign Signed(absl::Time at, const std::string& body = "") {
    RequestToSign r{.method = "POST", .path = "/api/v1/jobs/7/cancel"};
    r.query = {{"x", "1"}};
    r.headers["host"] = "127.0.0.1:8080";
    r.headers["idempotency-key"] = "k1";
    SignRequest(&r, body, "AK1", "s3cret", at, {"Idempotency-Key"});
    return r;
  }
  absl::StatusOr<std::string> Check(const RequestToSign& r, absl::Time now,
                                    const std::string& body = "") {
    return Verify(
        r, body,
        [&](absl::string_view id) -> std::optional<std::string> {
          if (id == "AK1" && !revoked_) return std::string("s3cret");
          return std::nullopt;
        },
        now, &replays_);
  }
  std::string Message(const absl::StatusOr<std::string>& s) {
    EXPECT_EQ(s.status().code(), absl::StatusCode::kUnauthenticated);
    return std::string(s.status().message());
  }

  absl::Time now_ = absl::FromUnixSeconds(1795000000);
  bool revoked_ = false;
  ReplayCache replays_;
};

TEST_F(VerifyTest, AcceptsOnceThenCallsItAReplay) {
  RequestToSign r = Signed(now_, "{}");
  EXPECT_EQ(*Check(r, now_ + absl::Seconds(1), "{}"), "AK1");
  EXPECT_EQ(Message(Check(r, now_ + absl::Seconds(2), "{}")), "replayed request");
}

TEST_F(VerifyTest, EachFailureHasItsOwnMessage) {
  RequestToSign unsigned_request{.method = "GET", .path = "/api/v1/jobs"};
  EXPECT_EQ(Message(Check(unsigned_request, now_)), "unsigned request: no Authorization header");

  RequestToSign r = Signed(now_);
  EXPECT_EQ(Message(Check(r, now_ + absl::Minutes(6))),
            "request time " + FormatSigningTime(now_) +
                " is outside the 5 minute window (server time " +
                FormatSigningTime(now_ + absl::Minutes(6)) + ")");
  EXPECT_EQ(Message(Check(r, now_, "tampered body")), "body does not match X-Dlab-Content-Sha256");

  RequestToSign tampered = r;
  tampered.query = {{"x", "2"}};
  EXPECT_EQ(Message(Check(tampered, now_)), "signature does not match");
  tampered = r;
  tampered.headers["idempotency-key"] = "k2";  // a signed header
  EXPECT_EQ(Message(Check(tampered, now_)), "signature does not match");
  tampered = r;
  tampered.headers["user-agent"] = "x";  // not signed: allowed
  EXPECT_TRUE(Check(tampered, now_).ok());

  revoked_ = true;
  EXPECT_EQ(Message(Check(Signed(now_ + absl::Seconds(5)), now_)),
            "unknown or revoked access key 'AK1'");
}

TEST(ParseAuthorizationTest, SaysWhatIsWrong) {
  auto msg = [](absl::string_view h) {
    return std::string(ParseAuthorization(h).status().message());
  };
  std::string sig(64, 'a');
  EXPECT_TRUE(ParseAuthorization("DLAB-HMAC-SHA256 Credential=K, SignedHeaders=host;"
                                 "x-dlab-content-sha256;x-dlab-date, Signature=" +
                                 sig)
                  .ok());
  EXPECT_EQ(msg("Bearer abc"),
            "malformed Authorization header: the scheme must be DLAB-HMAC-SHA256");
  EXPECT_EQ(msg("DLAB-HMAC-SHA256 Credential=K, SignedHeaders=host, Signature=" + sig),
            "malformed Authorization header: SignedHeaders must include x-dlab-content-sha256");
  EXPECT_EQ(msg("DLAB-HMAC-SHA256 Credential=K, SignedHeaders=x-dlab-date;host, Signature=" + sig),
            "malformed Authorization header: SignedHeaders must be sorted, without repeats");
  EXPECT_EQ(msg("DLAB-HMAC-SHA256 Credential=K, Signature=xyz"),
            "malformed Authorization header: Signature must be 64 lower-case hex digits");
  EXPECT_EQ(msg("DLAB-HMAC-SHA256 Credential=K, Credential=L"),
            "malformed Authorization header: unexpected or repeated field 'Credential'");
  EXPECT_EQ(msg("DLAB-HMAC-SHA256 Credential"),
            "malformed Authorization header: 'Credential' is not NAME=VALUE");
}

TEST(ReplayCacheTest, RemembersWhileTheSigningTimeCouldPassAndThenForgets) {
  ReplayCache cache(absl::Minutes(5));
  absl::Time t = absl::FromUnixSeconds(1'800'000'000);  // on a minute
  const std::string sig_a(64, 'a'), sig_b = std::string(63, 'a') + "b";
  EXPECT_TRUE(cache.CheckAndRemember(sig_a, t, t));
  EXPECT_TRUE(cache.CheckAndRemember(sig_b, t, t));  // differs in the last digit only
  EXPECT_FALSE(cache.CheckAndRemember(sig_a, t, t + absl::Minutes(5)));
  EXPECT_TRUE(cache.CheckAndRemember("not hex", t, t));
  EXPECT_FALSE(cache.CheckAndRemember("not hex", t, t));
  // A request signed at t fails the time check from t + 5 min on; 7 minutes on, its minute is
  // dropped.
  EXPECT_TRUE(cache.CheckAndRemember(std::string(64, 'c'), t + absl::Minutes(7),
                                     t + absl::Minutes(7)));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.CheckAndRemember(sig_a, t, t + absl::Minutes(7)));
}

TEST(SigningTimeTest, RoundTripsAndRefusesNonsense) {
  absl::Time t = absl::FromUnixSeconds(1795000000);
  EXPECT_EQ(*ParseSigningTime(FormatSigningTime(t)), t);
  for (const char* bad : {"20261322T101500Z", "2026-11-22T10:15", "20261122T101500", "",
                          "20261122X101500Z", "2026112aT101500Z"}) {
    EXPECT_EQ(ParseSigningTime(bad).status().code(), absl::StatusCode::kUnauthenticated) << bad;
  }
}

TEST(UriEncodeTest, KeepsOnlyUnreserved) {
  EXPECT_EQ(UriEncode("a-b.c_d~e"), "a-b.c_d~e");
  EXPECT_EQ(UriEncode("a b/ü=&"), "a%20b%2F%C3%BC%3D%26");
}

}  // namespace
}  // namespace dlab::auth
