#include "monitor/alerts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

absl::Time T(int seconds) { return absl::FromUnixSeconds(1'800'000'000 + seconds); }

AlertEngine Engine() {
  auto rules = ParseAlertRules(json::parse(R"({"rules": [
      {"name": "hot", "kind": "gpu_temperature_above", "threshold": 85, "for": "60s",
       "webhook": "http://127.0.0.1:9/hook"},
      {"name": "failed", "kind": "job_failed"}]})"));
  EXPECT_TRUE(rules.ok()) << rules.status();
  return AlertEngine(*rules);
}

std::map<std::string, AlertObservation> Hot(bool active, double value = 90) {
  return {{"node-1/gpu 0", {.active = active, .value = value, .message = "GPU 0 hot"}}};
}

TEST(AlertEngineTest, FiresOnceAfterForAndResolvesOnce) {
  AlertEngine engine = Engine();
  struct Step {
    int at;
    bool hot;
    std::string expect;  // "" : no transition
  };
  // Hot at 0, still hot at 30 (pending), 60 (fires), 90 (nothing new); cool at 120 (resolves),
  // cool at 150 (nothing).
  for (const Step& s : std::vector<Step>{{0, true, ""},
                                         {30, true, ""},
                                         {60, true, "firing"},
                                         {90, true, ""},
                                         {120, false, "resolved"},
                                         {150, false, ""}}) {
    auto events = engine.Observe("hot", Hot(s.hot), T(s.at));
    if (s.expect.empty()) {
      EXPECT_TRUE(events.empty()) << "at " << s.at;
      continue;
    }
    ASSERT_EQ(events.size(), 1u) << "at " << s.at;
    EXPECT_EQ(events[0].state, s.expect);
    EXPECT_EQ(events[0].key, "node-1/gpu 0");
    EXPECT_EQ(events[0].since, T(0));
    EXPECT_EQ(events[0].webhook, "http://127.0.0.1:9/hook");
    if (s.expect == "firing") {
      EXPECT_EQ(engine.Firing().size(), 1u);
    }
  }
  EXPECT_TRUE(engine.Firing().empty());
}

TEST(AlertEngineTest, AConditionThatClearsBeforeForFiresNothing) {
  AlertEngine engine = Engine();
  EXPECT_TRUE(engine.Observe("hot", Hot(true), T(0)).empty());
  EXPECT_TRUE(engine.Observe("hot", Hot(false), T(30)).empty());  // no resolve without a fire
  EXPECT_TRUE(engine.Observe("hot", Hot(true), T(40)).empty());   // the clock starts again
  EXPECT_TRUE(engine.Observe("hot", Hot(true), T(90)).empty());
  EXPECT_EQ(engine.Observe("hot", Hot(true), T(100)).size(), 1u);
  // A key no longer reported counts as cleared.
  auto events = engine.Observe("hot", {}, T(110));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, "resolved");
}

TEST(AlertEngineTest, AFailedJobFiresOnceAndNeverResolves) {
  AlertEngine engine = Engine();
  std::map<std::string, AlertObservation> failed = {{"job 7", {.active = true}}};
  EXPECT_EQ(engine.Observe("failed", failed, T(0)).size(), 1u);
  EXPECT_TRUE(engine.Observe("failed", failed, T(5)).empty());
  EXPECT_TRUE(engine.Observe("failed", {}, T(10)).empty());
  EXPECT_TRUE(engine.Observe("failed", failed, T(15)).empty());
  EXPECT_TRUE(engine.Observe("nope", failed, T(15)).empty());  // unknown rule
}

TEST(AlertEngineTest, EventsAsWebhookBodies) {
  AlertEngine engine = Engine();
  engine.Observe("hot", Hot(true, 91), T(0));
  auto events = engine.Observe("hot", Hot(true, 92), T(60));
  ASSERT_EQ(events.size(), 1u);
  json body = AlertEventJson(events[0]);
  EXPECT_EQ(body["rule"], "hot");
  EXPECT_EQ(body["kind"], "gpu_temperature_above");
  EXPECT_EQ(body["state"], "firing");
  EXPECT_EQ(body["value"], 92);
  EXPECT_EQ(body["threshold"], 85);
  EXPECT_EQ(body["since"], "2027-01-15T08:00:00Z");
}

TEST(AlertRulesTest, ErrorsNameTheField) {
  auto error = [](const char* text) {
    return std::string(ParseAlertRules(json::parse(text)).status().message());
  };
  EXPECT_EQ(error(R"({"rules": [{"name": "a", "kind": "gpu_hot"}]})"),
            "alerts.rules[0].kind: must be one of gpu_temperature_above, job_gpu_idle_below, "
            "job_failed, node_lost, tenant_at_quota");
  EXPECT_THAT(error(R"({"rules": [{"name": "a", "kind": "job_gpu_idle_below"}]})"),
              HasSubstr("alerts.rules[0].threshold: is required for job_gpu_idle_below"));
  EXPECT_EQ(error(R"({"rules": [{"name": "a", "kind": "job_failed", "threshold": 1}]})"),
            "alerts.rules[0].threshold: is not used by job_failed");
  EXPECT_EQ(
      error(
          R"({"rules": [{"name": "a", "kind": "node_lost"}, {"name": "a", "kind": "node_lost"}]})"),
      "alerts.rules[1].name: 'a' is used by another rule");
  EXPECT_EQ(error(R"({"rules": [{"name": "a", "kind": "node_lost", "webhook": "ftp://x"}]})"),
            "alerts.rules[0].webhook: must be an http:// or https:// URL");
  EXPECT_THAT(error(R"({"rules": [{"name": "a", "kind": "node_lost", "for": "soon"}]})"),
              HasSubstr("alerts.rules[0].for: "));
  EXPECT_EQ(error(R"({"rulez": []})"), "alerts.rulez: unknown field (known: rules)");
}

}  // namespace
}  // namespace dlab
