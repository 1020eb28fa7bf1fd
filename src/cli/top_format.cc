#include "cli/top_format.h"

#include <cmath>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/table.h"

namespace dlab {
namespace {

using nlohmann::json;
using table::Field;
using table::Text;

constexpr char kNotAvailable[] = "n/a";
constexpr size_t kMaxNameWidth = 24;

std::optional<double> Number(const json& object, const char* key) {
  const json& v = Field(object, key);
  if (!v.is_number()) return std::nullopt;
  return v.get<double>();
}

// "45%", "300 W": a reading rounded to a whole number with its unit, or n/a.
std::string Whole(std::optional<double> v, const char* unit) {
  if (!v) return kNotAvailable;
  return absl::StrCat(std::llround(*v), unit);
}

std::string GiB(double bytes) { return absl::StrFormat("%.1f", bytes / (1 << 30)); }

// "1.0 / 80.0 GiB" of used and total bytes; a part not available as n/a.
std::string UsedOfTotal(const json& object, const char* used_key, const char* total_key) {
  std::optional<double> used = Number(object, used_key);
  std::optional<double> total = Number(object, total_key);
  if (!used && !total) return kNotAvailable;
  return absl::StrCat(used ? GiB(*used) : kNotAvailable, " / ", total ? GiB(*total) : kNotAvailable,
                      " GiB");
}

const json* FindJob(const json& jobs, const json& id) {
  if (!jobs.is_array() || !id.is_number_integer()) return nullptr;
  for (const json& job : jobs) {
    if (Field(job, "id") == id) return &job;
  }
  return nullptr;
}

}  // namespace

std::string FormatTopFrame(const json& sample, const json& jobs) {
  if (!sample.is_object()) {
    return "no telemetry yet: dlabd takes its first sample within monitoring.interval\n";
  }
  const json& host = Field(sample, "host");
  std::string out =
      absl::StrCat("node ", Text(sample, "node"), "  sampled ", Text(sample, "time"), "\n",
                   "host  cpu ", Whole(Number(host, "cpu_pct"), "%"), "  memory ",
                   UsedOfTotal(host, "memory_used_bytes", "memory_total_bytes"), "  disk ",
                   UsedOfTotal(host, "disk_used_bytes", "disk_total_bytes"), "\n\n");
  const json& gpus = Field(sample, "gpus");
  if (!gpus.is_array() || gpus.empty()) {
    absl::StrAppend(&out, "no GPUs\n");
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"GPU", "MODEL", "UTIL", "MEMORY", "TEMP", "POWER", "JOB", "NAME", "OWNER"}};
    for (const json& gpu : gpus) {
      const json& holder = Field(gpu, "job");
      const json* job = FindJob(jobs, holder);
      rows.push_back(
          {Text(gpu, "index"), Text(gpu, "model"), Whole(Number(gpu, "utilization_pct"), "%"),
           UsedOfTotal(gpu, "memory_used_bytes", "memory_total_bytes"),
           Whole(Number(gpu, "temperature_c"), " C"), Whole(Number(gpu, "power_w"), " W"),
           Text(holder),
           job ? table::Truncate(table::OneLine(Text(*job, "name")), kMaxNameWidth) : "-",
           job ? Text(*job, "owner") : "-"});
    }
    absl::StrAppend(&out, table::RenderTable(rows));
  }
  if (const json& note = Field(sample, "gpu_note"); note.is_string() && !note.empty()) {
    absl::StrAppend(&out, "GPU readings: ", note.get<std::string>(), "\n");
  }
  return out;
}

}  // namespace dlab
