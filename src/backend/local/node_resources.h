// What this node offers to the local backend: its GPUs (through NVML, loaded at run time so
// that dlabd runs on machines without NVIDIA drivers), CPUs and memory. Thread-safe functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dlab {

struct GpuDevice {
  int index = 0;
  std::string uuid;   // "GPU-..."
  std::string model;  // as NVML names it: "NVIDIA H100 80GB HBM3"
  std::string type;   // GpuTypeFromModel(model): "H100"
  int64_t memory_bytes = 0;
};

// The GPU type users ask for (Resources::gpu_type) from an NVML model name. Rule: drop the
// vendor and brand words (NVIDIA, Tesla, GeForce, Quadro), take the first word up to a '-';
// a family word (RTX, GTX, TITAN) is joined with the word after it. Upper case.
//   "NVIDIA H100 80GB HBM3" -> "H100", "Tesla V100-SXM2-16GB" -> "V100",
//   "NVIDIA A100-SXM4-40GB" -> "A100", "NVIDIA GeForce RTX 4090" -> "RTX4090",
//   "NVIDIA H200" -> "H200", "NVIDIA RTX A6000" -> "RTXA6000". Empty when nothing is left.
std::string GpuTypeFromModel(std::string_view model);

// What NVML says about a GPU now; a reading the GPU or driver does not support is unset.
struct GpuReading {
  int index = 0;
  std::string uuid;
  std::string model;
  std::optional<double> utilization_pct;  // of time a kernel ran, over NVML's sample period
  std::optional<int64_t> memory_used_bytes;
  std::optional<int64_t> memory_total_bytes;
  std::optional<double> temperature_c;
  std::optional<double> power_w;
  std::optional<int64_t> ecc_errors;  // uncorrected, volatile (since the driver loaded)
};

// Current readings of every GPU. NVML is loaded and initialised on the first call and kept.
// Unavailable as for DiscoverNvmlGpus.
absl::StatusOr<std::vector<GpuReading>> ReadNvmlGpus();

// The GPUs NVML reports, in index order. Unavailable with the reason when libnvidia-ml.so.1
// cannot be loaded, NVML fails, or there is no GPU.
absl::StatusOr<std::vector<GpuDevice>> DiscoverNvmlGpus();

// CPUs this process may use, in millicores: the affinity mask's size times 1000, lowered by a
// cgroup cpu quota on this process's cgroup or an ancestor.
int64_t DetectCpuMillis();

// MemTotal from /proc/meminfo, lowered by a cgroup memory limit on this process's cgroup or
// an ancestor. 0 when /proc/meminfo is unreadable.
int64_t DetectMemoryBytes();

}  // namespace dlab
