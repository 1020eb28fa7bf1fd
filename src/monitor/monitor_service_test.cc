#include "monitor/monitor_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/testing/temp_dir.h"
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
                                return std::map<int64_t, JobGpus>{{7, {.gpus = {0}}}};
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
  EXPECT_EQ(j["gpus"][0]["job"], 7);
  EXPECT_TRUE(j["gpus"][1]["job"].is_null());  // free
}

// name -> (step -> value) of a job's stored metrics.
using Stored = std::map<std::string, std::map<int64_t, double>>;
Stored SeriesOf(MetricsStore& store, int64_t job) {
  Stored out;
  auto series = store.Series(job, {}, 0);
  EXPECT_TRUE(series.ok()) << series.status();
  if (!series.ok()) return out;
  for (const MetricSeries& s : *series) {
    for (const MetricPoint& p : s.points) out[s.name][p.step] = p.value;
  }
  return out;
}

void WriteFile(const std::filesystem::path& path, const nlohmann::json& content) {
  std::ofstream(path) << content.dump();
}

// The GPU readings of a telemetry file (monitoring.telemetry_file): GPUs 0 and 1 with readings
// at the given utilisation and memory used (GiB of 80), GPU 2 without any (like a fake GPU).
nlohmann::json Gpus(double util0, double util1, int64_t gib0, int64_t gib1) {
  return {{"gpus",
           {{{"index", 0},
             {"model", "H100"},
             {"utilization_pct", util0},
             {"memory_used_bytes", gib0 << 30},
             {"memory_total_bytes", int64_t{80} << 30}},
            {{"index", 1},
             {"model", "H100"},
             {"utilization_pct", util1},
             {"memory_used_bytes", gib1 << 30},
             {"memory_total_bytes", int64_t{80} << 30}},
            {{"index", 2}, {"model", "H100"}}}}};
}

TEST(MonitorServiceTest, RecordsEachRunningJobsGpuUtilisationWithTheJob) {
  testing::TempDir temp;
  const std::filesystem::path file = temp.path() / "gpus.json";
  WriteFile(file, Gpus(30, 50, 20, 40));
  auto metrics = MetricsStore::OpenSqlite((temp.path() / "metrics.db").string());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  std::map<int64_t, JobGpus> running = {
      {7, {.gpus = {0, 1}, .attempt = 2, .start_time = T(0)}},
      {8, {.gpus = {2}, .attempt = 1, .start_time = T(0)}},     // no readings
      {9, {.gpus = {0, 2}, .attempt = 1, .start_time = T(0)}},  // only some readings
      {10, {.gpus = {1}, .attempt = 1}},                        // not started yet
  };
  MonitorService monitor(
      {.job_metrics = metrics->get()},
      NewFileTelemetry(file.string(), NewHostTelemetry({.node = "node-1", .use_nvml = false})),
      {.job_gpus = [&running] { return running; }});
  monitor.Tick(T(90));
  WriteFile(file, Gpus(70, 90, 40, 40));
  monitor.Tick(T(95));

  EXPECT_EQ(SeriesOf(**metrics, 7), (Stored{{"system/gpu_memory_used_pct", {{90, 37.5}, {95, 50}}},
                                            {"system/gpu_utilization_pct", {{90, 40}, {95, 80}}}}));
  EXPECT_EQ(SeriesOf(**metrics, 8), Stored{});  // not available: nothing, never 0
  EXPECT_EQ(SeriesOf(**metrics, 9), Stored{});
  EXPECT_EQ(SeriesOf(**metrics, 10), Stored{});
  auto series = (*metrics)->Series(7, {kJobGpuUtilizationMetric}, 0);
  ASSERT_TRUE(series.ok() && series->size() == 1u);
  EXPECT_DOUBLE_EQ((*series)[0].latest.time, absl::ToDoubleSeconds(T(95) - absl::UnixEpoch()));

  // Each sample keeps which job held each GPU then (the jobs above share GPUs, which a real
  // node never does; here job 7 alone holds two).
  running = {{7, {.gpus = {0, 1}, .attempt = 2, .start_time = T(0)}}};
  monitor.Tick(T(100));
  nlohmann::json j = TelemetryJson(*monitor.telemetry().Latest());
  EXPECT_EQ(j["gpus"][0]["job"], 7);
  EXPECT_EQ(j["gpus"][1]["job"], 7);
  EXPECT_TRUE(j["gpus"][2]["job"].is_null());
}

}  // namespace
}  // namespace dlab
