#include "cli/commands.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "cli/testing/fake_http_server.h"

namespace dlab {
namespace {

using nlohmann::json;
using testing::FakeHttpServer;
using testing::JsonReply;
using testing::ReceivedRequest;

constexpr char kQueueReply[] = R"json({"jobs": [
  {"position": 2, "id": 14, "name": "sweep", "owner": "alice", "priority": 10, "gpus": 4,
   "submit_time": "2026-11-22T11:30:00.000Z", "reason": "waiting for resources: gpus",
   "estimated_start": null},
  {"position": 4, "id": 15, "name": "eval", "owner": "bob", "priority": 0, "gpus": 0,
   "submit_time": "2026-11-22T11:31:00.000Z", "reason": "waiting behind job 14 (FIFO order)",
   "estimated_start": null}]})json";

class QueueCommandTest : public ::testing::Test {
 protected:
  CommandContext Context(HttpClient* client) {
    return CommandContext{.client = client, .out = &out_};
  }
  std::ostringstream out_;
};

TEST_F(QueueCommandTest, PrintsTheTenantsQueueInTheServersOrder) {
  FakeHttpServer server([](const ReceivedRequest&) { return JsonReply(200, kQueueReply); });
  HttpClient client(server.url(), {.tenant = "vision"});
  ASSERT_TRUE(ShowQueue(Context(&client), {}).ok());

  std::vector<ReceivedRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].path, "/api/v1/queue");
  EXPECT_EQ(requests[0].Header("x-dlab-tenant"), "vision");
  std::string text = out_.str();
  EXPECT_TRUE(absl::StartsWith(
      text, "POS  ID  NAME   OWNER  PRIO  GPUS  WAITING  EST. START  REASON\n2    14  sweep  "))
      << text;
  size_t sweep = text.find("sweep  alice  10    4");
  size_t eval = text.find("eval   bob    0     0");
  ASSERT_NE(sweep, std::string::npos) << text;
  ASSERT_NE(eval, std::string::npos) << text;
  EXPECT_LT(sweep, eval);
  EXPECT_NE(text.find("-           waiting behind job 14 (FIFO order)\n"), std::string::npos)
      << text;
}

TEST_F(QueueCommandTest, JsonPrintsTheServersReply) {
  FakeHttpServer server([](const ReceivedRequest&) { return JsonReply(200, kQueueReply); });
  HttpClient client(server.url());
  ASSERT_TRUE(ShowQueue(Context(&client), {.format = OutputFormat::kJson}).ok());
  EXPECT_EQ(json::parse(out_.str()), json::parse(kQueueReply));
}

TEST_F(QueueCommandTest, AnEmptyQueueSaysSo) {
  FakeHttpServer server([](const ReceivedRequest&) { return JsonReply(200, R"({"jobs": []})"); });
  HttpClient client(server.url());
  ASSERT_TRUE(ShowQueue(Context(&client), {}).ok());
  EXPECT_EQ(out_.str(), "no queued jobs\n");
}

TEST_F(QueueCommandTest, AServerErrorComesBackWithItsMessage) {
  FakeHttpServer server([](const ReceivedRequest&) {
    return JsonReply(404, R"({"error": {"code": "NOT_FOUND", "message": "tenant 'x' not found"}})");
  });
  HttpClient client(server.url(), {.tenant = "x"});
  absl::Status status = ShowQueue(Context(&client), {});
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find("tenant 'x' not found"), std::string::npos) << status;
  EXPECT_EQ(out_.str(), "");
}

}  // namespace
}  // namespace dlab
