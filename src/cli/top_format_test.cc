#include "cli/top_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dlab {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// A sample like GET /api/v1/telemetry's "latest", with the given GPUs.
json Sample(json gpus, json gpu_note = nullptr) {
  return {{"time", "2026-11-22T21:00:00.000Z"},
          {"node", "localhost"},
          {"host",
           {{"cpu_pct", 12.4},
            {"memory_used_bytes", int64_t{3} << 30},
            {"memory_total_bytes", int64_t{16} << 30},
            {"disk_used_bytes", int64_t{100} << 30},
            {"disk_total_bytes", int64_t{1000} << 30}}},
          {"gpus", std::move(gpus)},
          {"gpu_note", std::move(gpu_note)}};
}

json Gpu(int index, json job, json util = nullptr, json used = nullptr, json total = nullptr,
         json temperature = nullptr, json power = nullptr) {
  return {{"index", index},
          {"uuid", "GPU-x"},
          {"model", "H100"},
          {"utilization_pct", std::move(util)},
          {"memory_used_bytes", used},
          {"memory_total_bytes", total},
          {"temperature_c", temperature},
          {"power_w", power},
          {"ecc_errors", nullptr},
          {"job", std::move(job)}};
}

const json kJobs = json::parse(R"json([
  {"id": 12, "name": "digits", "owner": "alice", "state": "RUNNING"},
  {"id": 13, "name": "eval", "owner": "bob", "state": "RUNNING"}])json");

struct Case {
  const char* what;
  json gpu;
  std::string row;  // the GPU's row of the table, as printed
};

TEST(TopFormatTest, OneRowPerGpuWithItsReadingsAndItsJob) {
  const int64_t gib = int64_t{1} << 30;
  const std::vector<Case> cases = {
      {"readings available, held", Gpu(0, 12, 49.6, 20 * gib, 80 * gib, 61.2, 299.5),
       "0    H100   50%   20.0 / 80.0 GiB  61 C  300 W  12   digits  alice"},
      {"readings available, free", Gpu(1, nullptr, 0, 0, 80 * gib, 30, 60),
       "1    H100   0%    0.0 / 80.0 GiB   30 C  60 W   -    -       -"},
      {"not available, held", Gpu(2, 13),
       "2    H100   n/a   n/a              n/a   n/a    13   eval    bob"},
      {"not available, free", Gpu(3, nullptr),
       "3    H100   n/a   n/a              n/a   n/a    -    -       -"},
      {"held by a job the caller cannot see", Gpu(4, 99, 7, nullptr, 80 * gib),
       "4    H100   7%    n/a / 80.0 GiB   n/a   n/a    99   -       -"},
  };
  json gpus = json::array();
  for (const Case& c : cases) gpus.push_back(c.gpu);
  std::string frame = FormatTopFrame(Sample(gpus), kJobs);
  EXPECT_THAT(frame,
              HasSubstr("node localhost  sampled 2026-11-22T21:00:00.000Z\n"
                        "host  cpu 12%  memory 3.0 / 16.0 GiB  disk 100.0 / 1000.0 GiB\n\n"
                        "GPU  MODEL  UTIL  MEMORY           TEMP  POWER  JOB  NAME    OWNER\n"));
  for (const Case& c : cases)
    EXPECT_THAT(frame, HasSubstr(c.row + "\n")) << c.what << "\n" << frame;
  EXPECT_THAT(frame, Not(HasSubstr("GPU readings:")));
}

TEST(TopFormatTest, NoSampleNoGpusAndTheGpuNote) {
  EXPECT_EQ(FormatTopFrame(nullptr, kJobs),
            "no telemetry yet: dlabd takes its first sample within monitoring.interval\n");
  json sample = Sample(json::array(), "no NVML");
  sample["host"]["cpu_pct"] = nullptr;
  sample["host"]["disk_used_bytes"] = nullptr;
  sample["host"]["disk_total_bytes"] = nullptr;
  EXPECT_EQ(FormatTopFrame(sample, json::array()),
            "node localhost  sampled 2026-11-22T21:00:00.000Z\n"
            "host  cpu n/a  memory 3.0 / 16.0 GiB  disk n/a\n\n"
            "no GPUs\n"
            "GPU readings: no NVML\n");
}

}  // namespace
}  // namespace dlab
