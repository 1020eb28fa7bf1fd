#include "cli/http_client.h"

#include <gtest/gtest.h>

#include "common/uri_encode.h"

namespace dlab {
namespace {

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

}  // namespace
}  // namespace dlab
