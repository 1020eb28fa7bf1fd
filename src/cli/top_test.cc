#include "cli/top.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "cli/testing/fake_http_server.h"
#include "cli/top_format.h"

namespace dlab {
namespace {

using nlohmann::json;
using testing::FakeHttpServer;
using testing::FakeReply;
using ::testing::HasSubstr;
using testing::JsonReply;
using ::testing::Not;
using testing::ReceivedRequest;

constexpr char kTelemetry[] = R"json({"latest": {"time": "2026-11-22T21:00:00.000Z",
  "node": "localhost", "host": {"cpu_pct": 5, "memory_used_bytes": null,
  "memory_total_bytes": null, "disk_used_bytes": null, "disk_total_bytes": null},
  "gpus": [{"index": 0, "uuid": "GPU-0", "model": "H100", "utilization_pct": 93,
            "memory_used_bytes": null, "memory_total_bytes": null, "temperature_c": 70,
            "power_w": null, "ecc_errors": null, "job": 12}],
  "gpu_note": null}, "samples": []})json";
constexpr char kJobs[] =
    R"json({"jobs": [{"id": 12, "name": "digits", "owner": "alice"}], "next_cursor": null})json";

FakeReply Reply(const ReceivedRequest& r) {
  if (r.path == "/api/v1/telemetry") return JsonReply(200, kTelemetry);
  if (r.path == "/api/v1/jobs") return JsonReply(200, kJobs);
  return JsonReply(404, R"({"error": {"code": "NOT_FOUND", "message": "no such route"}})");
}

TEST(TopCommandTest, OncePrintsOneFrameWithoutTerminalCodes) {
  FakeHttpServer server(Reply);
  HttpClient client(server.url());
  std::ostringstream out;
  ASSERT_TRUE(ShowTop({.client = &client, .out = &out}, {.once = true}).ok());
  EXPECT_EQ(out.str(),
            FormatTopFrame(json::parse(kTelemetry)["latest"], json::parse(kJobs)["jobs"]));
  EXPECT_THAT(out.str(), HasSubstr("93%"));
  EXPECT_THAT(out.str(), Not(HasSubstr("\x1b")));
  std::vector<ReceivedRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].path, "/api/v1/telemetry");
  EXPECT_EQ(requests[1].path, "/api/v1/jobs");
  EXPECT_THAT(requests[1].query, ::testing::Contains(std::make_pair(
                                     std::string("state"), std::string("STARTING,RUNNING"))));
}

TEST(TopCommandTest, AServerErrorEndsTheCommand) {
  FakeHttpServer server([](const ReceivedRequest&) {
    return JsonReply(401, R"({"error": {"code": "UNAUTHENTICATED", "message": "sign in"}})");
  });
  HttpClient client(server.url());
  std::ostringstream out;
  for (bool once : {true, false}) {
    absl::Status status = ShowTop({.client = &client, .out = &out}, {.once = once});
    EXPECT_TRUE(absl::IsUnauthenticated(status)) << status;
  }
}

// Redraws in place every interval until Ctrl-C (SIGINT), then returns OK.
TEST(TopCommandTest, RedrawsUntilInterrupted) {
  std::atomic<int> frames{0};
  FakeHttpServer server([&frames](const ReceivedRequest& r) {
    if (r.path == "/api/v1/telemetry" && ++frames == 3) ::kill(::getpid(), SIGINT);
    return Reply(r);
  });
  HttpClient client(server.url());
  std::ostringstream out;
  absl::Status status = ShowTop({.client = &client, .out = &out},
                                {.interval = absl::Milliseconds(20), .clear_screen = true});
  ASSERT_TRUE(status.ok()) << status;
  std::string text = out.str();
  EXPECT_TRUE(absl::StartsWith(text, "\x1b[H\x1b[2Jnode localhost")) << text;
  // The third poll was interrupted: two frames were drawn.
  EXPECT_EQ(text.find("\x1b[H\x1b[2J", 1), text.rfind("\x1b[H\x1b[2J")) << text;
  EXPECT_EQ(frames, 3);
}

}  // namespace
}  // namespace dlab
