#include "monitor/webhook.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "api/http_server.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using json = nlohmann::json;

// A webhook receiver that fails the first `failures` deliveries with 500.
class Receiver {
 public:
  explicit Receiver(int failures) : failures_(failures) {
    Router router;
    router.Add("POST", "/hook", [this](const HttpRequest& req) {
      std::lock_guard<std::mutex> lock(mu_);
      if (seen_++ < failures_) return ErrorResponse(500, "INTERNAL", "not now");
      bodies_.push_back(json::parse(req.body));
      return HttpResponse{.status = 204};
    });
    server_ = *HttpServer::Start({.port = 0}, std::move(router));
  }
  ~Receiver() { server_->Stop(); }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + "/hook";
  }
  std::vector<json> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }

 private:
  int failures_;
  std::mutex mu_;
  int seen_ = 0;
  std::vector<json> bodies_;
  std::unique_ptr<HttpServer> server_;
};

AlertEvent Event(const std::string& url, const std::string& state) {
  return {.rule = "hot",
          .kind = "gpu_temperature_above",
          .key = "node-1/gpu 0",
          .state = state,
          .since = absl::FromUnixSeconds(1'800'000'000),
          .time = absl::FromUnixSeconds(1'800'000'060),
          .webhook = url};
}

bool WaitFor(const std::function<bool()>& done) {
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(WebhookNotifierTest, RetriesWithBackoffAndDeliversInOrder) {
  Receiver receiver(/*failures=*/2);
  WebhookNotifier notifier({.first_backoff = absl::Milliseconds(20)});
  notifier.Send(Event(receiver.url(), "firing"));
  notifier.Send(Event(receiver.url(), "resolved"));
  notifier.Send(Event("", "firing"));  // no webhook: not sent
  ASSERT_TRUE(WaitFor([&] { return notifier.Stats().delivered == 2; }));
  WebhookStats stats = notifier.Stats();
  EXPECT_EQ(stats.attempts, 4);  // 500, 500, then 2 deliveries
  EXPECT_EQ(stats.failed, 0);
  EXPECT_EQ(stats.pending, 0);
  auto bodies = receiver.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0]["state"], "firing");
  EXPECT_EQ(bodies[1]["state"], "resolved");
  EXPECT_EQ(bodies[0]["key"], "node-1/gpu 0");
}

TEST(WebhookNotifierTest, GivesUpAfterMaxAttempts) {
  WebhookNotifier notifier({.max_attempts = 3, .first_backoff = absl::Milliseconds(10)});
  notifier.Send(Event("http://127.0.0.1:1/hook", "firing"));  // nothing listens there
  ASSERT_TRUE(WaitFor([&] { return notifier.Stats().failed == 1; }));
  EXPECT_EQ(notifier.Stats().attempts, 3);
  EXPECT_EQ(notifier.Stats().delivered, 0);
}

}  // namespace
}  // namespace dlab
