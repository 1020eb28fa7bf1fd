// Telemetry: what this node's GPUs (NVML) and host (CPU, memory, the data directory's disk) are
// doing, sampled every few seconds and kept for a window; as JSON for the API and the console,
// and as Prometheus text in the names of NVIDIA's DCGM exporter for /metrics. A reading that
// cannot be had (no NVML, fake GPUs from the config) is left unset: "not available", never
// invented. Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "backend/local/node_resources.h"
#include "nlohmann/json_fwd.hpp"

namespace dlab {

struct HostReading {
  std::optional<double> cpu_pct;  // of all CPUs, since the previous sample
  std::optional<int64_t> memory_used_bytes, memory_total_bytes;
  std::optional<int64_t> disk_used_bytes, disk_total_bytes;  // of the data directory's filesystem
};

struct TelemetrySample {
  absl::Time time;
  std::string node;
  HostReading host;
  std::vector<GpuReading> gpus;
  std::string gpu_note;  // why GPU readings are not available, if they are not
  // GPU index -> the running job holding it when the sample was taken (set by the monitor).
  std::map<int, int64_t> gpu_jobs;
};

class TelemetrySource {
 public:
  virtual ~TelemetrySource() = default;
  virtual TelemetrySample Sample() = 0;
};

// This machine: /proc/stat, /proc/meminfo, statvfs(data_dir), and NVML when use_nvml (else the
// configured GPUs, listed without readings, with note).
struct HostTelemetryOptions {
  std::string node = "localhost";
  std::string data_dir;
  bool use_nvml = true;
  std::vector<GpuReading> configured_gpus;  // for fake GPUs: index, model only
  std::string note;                         // why their readings are not available
};
std::unique_ptr<TelemetrySource> NewHostTelemetry(HostTelemetryOptions options);

// Readings from a JSON file, read at every sample, for tests and demos: {"gpus": [{"index": 0,
// "model": "...", "utilization_pct": 3, "temperature_c": 91, ...}]} over the host's readings.
std::unique_ptr<TelemetrySource> NewFileTelemetry(std::string path,
                                                  std::unique_ptr<TelemetrySource> host);

// Samples kept for a window.
class TelemetryStore {
 public:
  explicit TelemetryStore(absl::Duration window) : window_(window) {}
  void Add(TelemetrySample sample);
  std::optional<TelemetrySample> Latest() const;
  std::vector<TelemetrySample> Since(absl::Time since) const;

 private:
  const absl::Duration window_;
  mutable std::mutex mu_;
  std::deque<TelemetrySample> samples_ ABSL_GUARDED_BY(mu_);
};

// {"time", "node", "host": {...}, "gpus": [{"index", "uuid", "model", "utilization_pct", ...,
// "job"}], "gpu_note"}; unset readings, and "job" of a GPU no job holds, are null.
nlohmann::json TelemetryJson(const TelemetrySample& sample);

// DCGM exporter style gauges (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED/FREE in MiB,
// DCGM_FI_DEV_GPU_TEMP, DCGM_FI_DEV_POWER_USAGE, DCGM_FI_DEV_ECC_DBE_VOL_TOTAL) with labels
// gpu, UUID, device, modelName, Hostname (and dlab_job where sample.gpu_jobs has the GPU), plus
// dlab_host_* gauges. Unset readings are left out.
std::string TelemetryPrometheus(const TelemetrySample& sample);

}  // namespace dlab
