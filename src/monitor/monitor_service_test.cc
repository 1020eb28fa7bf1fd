#include "monitor/monitor_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Telemetry whose GPU readings the test sets.
class FakeTelemetry final : public TelemetrySource {
 public:
  explicit FakeTelemetry(std::vector<GpuReading>* gpus) : gpus_(gpus) {}
  TelemetrySample Sample() override {
    return {.node = "node-1", .host = {.cpu_pct = 12.5}, .gpus = *gpus_};
  }

 private:
  std::vector<GpuReading>* gpus_;
};

absl::Time T(int s) { return absl::FromUnixSeconds(1'800'000'000 + s); }

TEST(MonitorServiceTest, TelemetryDrivesAlertsAndMetrics) {
  std::vector<GpuReading> gpus = {
      {.index = 0,
       .uuid = "GPU-a",
       .model = "NVIDIA H100",
       .utilization_pct = 2,
       .temperature_c = 91},
      {.index = 1, .uuid = "GPU-b", .model = "NVIDIA H100"}};  // nothing known about it
  auto rules = ParseAlertRules(nlohmann::json::parse(R"({"rules": [
      {"name": "hot", "kind": "gpu_temperature_above", "threshold": 85},
      {"name": "idle", "kind": "job_gpu_idle_below", "threshold": 5, "for": "30m"},
      {"name": "lost", "kind": "node_lost"}]})"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  std::map<std::string, std::string> lost;
  MonitorService monitor({.rules = *rules}, std::make_unique<FakeTelemetry>(&gpus),
                         {.job_gpus =
                              [] {
                                return std::map<int64_t, std::vector<int>>{{7, {0}}};
                              },
                          .lost_nodes = [&lost] { return lost; }});
  monitor.Tick(T(0));
  ASSERT_EQ(monitor.Firing().size(), 1u);  // hot at once; idle only after 30 minutes
  EXPECT_EQ(monitor.Firing()[0].message, "GPU 0 of node-1 at 91 C (limit 85 C)");
  monitor.Tick(T(1800));
  EXPECT_EQ(monitor.Firing().size(), 2u);
  EXPECT_EQ(monitor.Recent().back().key, "job 7");
  gpus[0].temperature_c = 70;
  gpus[0].utilization_pct = 80;
  lost["node node-2"] = "DOWN+NOT_RESPONDING";
  monitor.Tick(T(1805));
  std::vector<AlertEvent> recent = monitor.Recent();
  ASSERT_EQ(recent.size(), 5u);  // hot, idle fired; lost fired; hot, idle resolved
  EXPECT_EQ(monitor.Firing().size(), 1u);
  EXPECT_EQ(monitor.Firing()[0].rule, "lost");

  std::string metrics = monitor.Prometheus();
  EXPECT_THAT(metrics,
              HasSubstr("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-a\",device=\"nvidia0\","
                        "modelName=\"NVIDIA H100\",Hostname=\"node-1\",dlab_job=\"7\"} 80\n"));
  EXPECT_THAT(metrics, HasSubstr("DCGM_FI_DEV_GPU_TEMP{gpu=\"0\""));
  EXPECT_THAT(metrics, Not(HasSubstr("gpu=\"1\"")));  // not available: left out, not zero
  EXPECT_THAT(metrics, HasSubstr("dlab_host_cpu_utilization_percent{Hostname=\"node-1\"} 12.5"));
  EXPECT_THAT(metrics, HasSubstr("dlab_alerts_firing 1\n"));
  nlohmann::json j = TelemetryJson(*monitor.telemetry().Latest());
  EXPECT_TRUE(j["gpus"][1]["temperature_c"].is_null());
  EXPECT_EQ(j["gpus"][0]["temperature_c"], 70);
}

}  // namespace
}  // namespace dlab
