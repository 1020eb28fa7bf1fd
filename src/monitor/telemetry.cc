#include "monitor/telemetry.h"

#include <sys/statvfs.h>

#include <functional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using json = nlohmann::json;

// "cpu  user nice system idle iowait irq softirq steal ..." of /proc/stat: (busy, total).
std::optional<std::pair<uint64_t, uint64_t>> CpuTimes() {
  absl::StatusOr<std::string> text = ReadFile("/proc/stat");
  if (!text.ok()) return std::nullopt;
  const std::string first = text->substr(0, text->find('\n'));  // outlives the views into it
  std::vector<absl::string_view> f = absl::StrSplit(first, ' ', absl::SkipEmpty());
  if (f.size() < 5 || f[0] != "cpu") return std::nullopt;
  uint64_t total = 0, idle = 0;
  for (size_t i = 1; i < f.size() && i <= 8; ++i) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(f[i], &v)) return std::nullopt;
    total += v;
    if (i == 4 || i == 5) idle += v;  // idle, iowait
  }
  return std::make_pair(total - idle, total);
}

// kB value of a /proc/meminfo line.
std::optional<int64_t> MemInfo(const std::string& text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t kb = 0;
    if (!f.empty() && absl::SimpleAtoi(f[0], &kb)) return kb * 1024;
  }
  return std::nullopt;
}

class HostTelemetry final : public TelemetrySource {
 public:
  explicit HostTelemetry(HostTelemetryOptions options) : options_(std::move(options)) {
    last_cpu_ = CpuTimes();
  }

  TelemetrySample Sample() override {
    TelemetrySample s{.time = absl::Now(), .node = options_.node};
    if (auto now = CpuTimes(); now && last_cpu_ && now->second > last_cpu_->second) {
      s.host.cpu_pct = 100.0 * static_cast<double>(now->first - last_cpu_->first) /
                       static_cast<double>(now->second - last_cpu_->second);
      last_cpu_ = now;
    } else if (now) {
      last_cpu_ = now;
    }
    if (absl::StatusOr<std::string> mem = ReadFile("/proc/meminfo"); mem.ok()) {
      auto total = MemInfo(*mem, "MemTotal");
      auto available = MemInfo(*mem, "MemAvailable");
      if (total && available) {
        s.host.memory_total_bytes = *total;
        s.host.memory_used_bytes = *total - *available;
      }
    }
    if (struct statvfs fs{};
        !options_.data_dir.empty() && statvfs(options_.data_dir.c_str(), &fs) == 0) {
      s.host.disk_total_bytes = static_cast<int64_t>(fs.f_blocks) * fs.f_frsize;
      s.host.disk_used_bytes =
          static_cast<int64_t>(fs.f_blocks - fs.f_bfree) * static_cast<int64_t>(fs.f_frsize);
    }
    if (options_.use_nvml) {
      absl::StatusOr<std::vector<GpuReading>> gpus = ReadNvmlGpus();
      if (gpus.ok()) {
        s.gpus = *std::move(gpus);
      } else {
        s.gpu_note = std::string(gpus.status().message());
      }
    } else {
      s.gpus = options_.configured_gpus;
      s.gpu_note = options_.note;
    }
    return s;
  }

 private:
  const HostTelemetryOptions options_;
  std::optional<std::pair<uint64_t, uint64_t>> last_cpu_;
};

template <typename T>
void Set(const json& j, const char* key, std::optional<T>* out) {
  if (j.contains(key) && j[key].is_number()) *out = j[key].get<T>();
}

class FileTelemetry final : public TelemetrySource {
 public:
  FileTelemetry(std::string path, std::unique_ptr<TelemetrySource> host)
      : path_(std::move(path)), host_(std::move(host)) {}

  TelemetrySample Sample() override {
    TelemetrySample s = host_->Sample();
    absl::StatusOr<std::string> text = ReadFile(path_);
    json j = text.ok() ? json::parse(*text, nullptr, false) : json();
    if (!j.is_object() || !j.contains("gpus") || !j["gpus"].is_array()) {
      s.gpus.clear();
      s.gpu_note = absl::StrCat("telemetry file ", path_, " is missing or malformed");
      return s;
    }
    s.gpus.clear();
    s.gpu_note.clear();
    for (const json& g : j["gpus"]) {
      if (!g.is_object()) continue;
      GpuReading r{
          .index = g.value("index", 0), .uuid = g.value("uuid", ""), .model = g.value("model", "")};
      Set(g, "utilization_pct", &r.utilization_pct);
      Set(g, "memory_used_bytes", &r.memory_used_bytes);
      Set(g, "memory_total_bytes", &r.memory_total_bytes);
      Set(g, "temperature_c", &r.temperature_c);
      Set(g, "power_w", &r.power_w);
      Set(g, "ecc_errors", &r.ecc_errors);
      s.gpus.push_back(std::move(r));
    }
    return s;
  }

 private:
  const std::string path_;
  std::unique_ptr<TelemetrySource> host_;
};

template <typename T>
json Opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// The job holding a GPU at the sample's time, or 0.
int64_t JobOf(const TelemetrySample& s, int gpu) {
  auto it = s.gpu_jobs.find(gpu);
  return it == s.gpu_jobs.end() ? 0 : it->second;
}

}  // namespace

std::unique_ptr<TelemetrySource> NewHostTelemetry(HostTelemetryOptions options) {
  return std::make_unique<HostTelemetry>(std::move(options));
}

std::unique_ptr<TelemetrySource> NewFileTelemetry(std::string path,
                                                  std::unique_ptr<TelemetrySource> host) {
  return std::make_unique<FileTelemetry>(std::move(path), std::move(host));
}

void TelemetryStore::Add(TelemetrySample sample) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::Time cutoff = sample.time - window_;
  samples_.push_back(std::move(sample));
  while (!samples_.empty() && samples_.front().time < cutoff) samples_.pop_front();
}

std::optional<TelemetrySample> TelemetryStore::Latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (samples_.empty()) return std::nullopt;
  return samples_.back();
}

std::vector<TelemetrySample> TelemetryStore::Since(absl::Time since) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TelemetrySample> out;
  for (const TelemetrySample& s : samples_) {
    if (s.time >= since) out.push_back(s);
  }
  return out;
}

json TelemetryJson(const TelemetrySample& s) {
  json gpus = json::array();
  for (const GpuReading& g : s.gpus) {
    int64_t job = JobOf(s, g.index);
    gpus.push_back({{"index", g.index},
                    {"uuid", g.uuid},
                    {"model", g.model},
                    {"utilization_pct", Opt(g.utilization_pct)},
                    {"memory_used_bytes", Opt(g.memory_used_bytes)},
                    {"memory_total_bytes", Opt(g.memory_total_bytes)},
                    {"temperature_c", Opt(g.temperature_c)},
                    {"power_w", Opt(g.power_w)},
                    {"ecc_errors", Opt(g.ecc_errors)},
                    {"job", job > 0 ? json(job) : json(nullptr)}});
  }
  return {{"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", s.time, absl::UTCTimeZone())},
          {"node", s.node},
          {"host",
           {{"cpu_pct", Opt(s.host.cpu_pct)},
            {"memory_used_bytes", Opt(s.host.memory_used_bytes)},
            {"memory_total_bytes", Opt(s.host.memory_total_bytes)},
            {"disk_used_bytes", Opt(s.host.disk_used_bytes)},
            {"disk_total_bytes", Opt(s.host.disk_total_bytes)}}},
          {"gpus", gpus},
          {"gpu_note", s.gpu_note.empty() ? json(nullptr) : json(s.gpu_note)}};
}

std::string TelemetryPrometheus(const TelemetrySample& s) {
  std::string out;
  auto gauge = [&out](const char* name, const char* help) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n");
  };
  struct Field {
    const char* name;
    const char* help;
    std::function<std::optional<double>(const GpuReading&)> get;
  };
  const Field fields[] = {
      {"DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).",
       [](const GpuReading& g) { return g.utilization_pct; }},
      {"DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).",
       [](const GpuReading& g) -> std::optional<double> {
         if (!g.memory_used_bytes) return std::nullopt;
         return static_cast<double>(*g.memory_used_bytes) / (1 << 20);
       }},
      {"DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).",
       [](const GpuReading& g) -> std::optional<double> {
         if (!g.memory_used_bytes || !g.memory_total_bytes) return std::nullopt;
         return static_cast<double>(*g.memory_total_bytes - *g.memory_used_bytes) / (1 << 20);
       }},
      {"DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).",
       [](const GpuReading& g) { return g.temperature_c; }},
      {"DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).",
       [](const GpuReading& g) { return g.power_w; }},
      {"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Total number of double-bit volatile ECC errors.",
       [](const GpuReading& g) -> std::optional<double> {
         if (!g.ecc_errors) return std::nullopt;
         return static_cast<double>(*g.ecc_errors);
       }},
  };
  for (const Field& f : fields) {
    bool any = false;
    for (const GpuReading& g : s.gpus) {
      std::optional<double> v = f.get(g);
      if (!v) continue;
      if (!any) gauge(f.name, f.help);
      any = true;
      int64_t job = JobOf(s, g.index);
      absl::StrAppend(&out, f.name, "{gpu=\"", g.index, "\",UUID=\"", Escape(g.uuid),
                      "\",device=\"nvidia", g.index, "\",modelName=\"", Escape(g.model),
                      "\",Hostname=\"", Escape(s.node), "\"",
                      job > 0 ? absl::StrCat(",dlab_job=\"", job, "\"") : "", "} ", *v, "\n");
    }
  }
  auto host = [&](const char* name, const char* help, auto v) {
    if (!v) return;
    gauge(name, help);
    absl::StrAppend(&out, name, "{Hostname=\"", Escape(s.node), "\"} ", static_cast<double>(*v),
                    "\n");
  };
  host("dlab_host_cpu_utilization_percent", "CPU busy over the last sample (in %).",
       s.host.cpu_pct);
  host("dlab_host_memory_used_bytes", "Memory in use (MemTotal - MemAvailable).",
       s.host.memory_used_bytes);
  host("dlab_host_memory_total_bytes", "Memory in total.", s.host.memory_total_bytes);
  host("dlab_host_data_disk_used_bytes", "Used bytes of the data directory's filesystem.",
       s.host.disk_used_bytes);
  host("dlab_host_data_disk_total_bytes", "Size of the data directory's filesystem.",
       s.host.disk_total_bytes);
  return out;
}

}  // namespace dlab
