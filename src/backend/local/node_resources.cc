#include "backend/local/node_resources.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <mutex>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "backend/local/attempt_files.h"
#include "backend/local/cgroup.h"

namespace dlab {
namespace {

// The few NVML declarations used; see nvml.h of the CUDA toolkit.
using NvmlReturn = int;
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
constexpr NvmlReturn kNvmlSuccess = 0;
constexpr unsigned kNvmlNameLength = 96;
constexpr unsigned kNvmlUuidLength = 96;

struct NvmlUtilization {
  unsigned gpu;     // percent of time a kernel ran over the last sample period
  unsigned memory;  // percent of time memory was read or written
};
constexpr int kNvmlTemperatureGpu = 0;
constexpr int kNvmlMemoryErrorUncorrected = 1;
constexpr int kNvmlVolatileEcc = 0;

struct NvmlApi {
  NvmlReturn (*init)();
  NvmlReturn (*shutdown)();
  const char* (*error_string)(NvmlReturn);
  NvmlReturn (*get_count)(unsigned*);
  NvmlReturn (*get_handle)(unsigned, NvmlDevice*);
  NvmlReturn (*get_name)(NvmlDevice, char*, unsigned);
  NvmlReturn (*get_uuid)(NvmlDevice, char*, unsigned);
  NvmlReturn (*get_memory)(NvmlDevice, NvmlMemory*);
  // Telemetry (ReadNvmlGpus); optional: a reading NVML does not support stays unset.
  NvmlReturn (*get_utilization)(NvmlDevice, NvmlUtilization*);
  NvmlReturn (*get_temperature)(NvmlDevice, int, unsigned*);
  NvmlReturn (*get_power)(NvmlDevice, unsigned*);  // milliwatts
  NvmlReturn (*get_ecc)(NvmlDevice, int, int, unsigned long long*);
};

template <typename Fn>
bool Bind(void* lib, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(dlsym(lib, name));
  return *fn != nullptr;
}

absl::Status NvmlError(const NvmlApi& nvml, absl::string_view call, NvmlReturn rc) {
  const char* text = nvml.error_string != nullptr ? nvml.error_string(rc) : nullptr;
  return absl::UnavailableError(
      absl::StrCat("NVML ", call, ": ", text != nullptr ? text : absl::StrCat("error ", rc)));
}

absl::StatusOr<std::vector<GpuDevice>> QueryNvml(const NvmlApi& nvml) {
  auto failed = [&nvml](absl::string_view call, NvmlReturn rc) {
    return NvmlError(nvml, call, rc);
  };
  unsigned count = 0;
  if (NvmlReturn rc = nvml.get_count(&count); rc != kNvmlSuccess) {
    return failed("nvmlDeviceGetCount_v2", rc);
  }
  if (count == 0) return absl::UnavailableError("NVML reports no GPU");
  std::vector<GpuDevice> gpus;
  for (unsigned i = 0; i < count; ++i) {
    NvmlDevice device = nullptr;
    char name[kNvmlNameLength] = {};
    char uuid[kNvmlUuidLength] = {};
    NvmlMemory memory{};
    if (NvmlReturn rc = nvml.get_handle(i, &device); rc != kNvmlSuccess) {
      return failed("nvmlDeviceGetHandleByIndex_v2", rc);
    }
    if (NvmlReturn rc = nvml.get_name(device, name, sizeof(name)); rc != kNvmlSuccess) {
      return failed("nvmlDeviceGetName", rc);
    }
    if (NvmlReturn rc = nvml.get_uuid(device, uuid, sizeof(uuid)); rc != kNvmlSuccess) {
      return failed("nvmlDeviceGetUUID", rc);
    }
    if (NvmlReturn rc = nvml.get_memory(device, &memory); rc != kNvmlSuccess) {
      return failed("nvmlDeviceGetMemoryInfo", rc);
    }
    gpus.push_back({.index = static_cast<int>(i),
                    .uuid = uuid,
                    .model = name,
                    .type = GpuTypeFromModel(name),
                    .memory_bytes = static_cast<int64_t>(memory.total)});
  }
  return gpus;
}

// "0::/a/b" (v2) or "4:memory:/a/b" (v1) lines of /proc/self/cgroup: the path of this process
// in the hierarchy holding `controller` ("" for v2).
std::optional<std::string> OwnCgroupPath(absl::string_view controller) {
  absl::StatusOr<std::string> text = ReadFile("/proc/self/cgroup");
  if (!text.ok()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    bool match = controller.empty() && fields[1].empty();
    for (absl::string_view c : absl::StrSplit(fields[1], ',')) {
      match = match || (!controller.empty() && c == controller);
    }
    if (match) return std::string(fields[2]);
  }
  return std::nullopt;
}

// Calls fn with every directory from this process's cgroup up to the hierarchy root.
void ForEachOwnCgroup(const std::string& root, absl::string_view controller,
                      const std::function<void(const std::string&)>& fn) {
  if (root.empty()) return;
  std::optional<std::string> path = OwnCgroupPath(controller);
  if (!path.has_value()) return;
  std::string rel = *path;
  for (;;) {
    while (!rel.empty() && rel.back() == '/') rel.pop_back();
    fn(root + rel);
    if (rel.empty()) return;
    rel.resize(rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/'));
  }
}

std::optional<int64_t> ReadInt(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  int64_t value = 0;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string GpuTypeFromModel(std::string_view model) {
  std::vector<std::string> words;
  for (absl::string_view word :
       absl::StrSplit(absl::string_view(model.data(), model.size()), ' ', absl::SkipEmpty())) {
    std::string upper = absl::AsciiStrToUpper(word);
    if (upper == "NVIDIA" || upper == "TESLA" || upper == "GEFORCE" || upper == "QUADRO") {
      continue;
    }
    words.push_back(upper.substr(0, upper.find('-')));
  }
  if (words.empty()) return "";
  bool family = words[0] == "RTX" || words[0] == "GTX" || words[0] == "TITAN";
  return family && words.size() > 1 ? words[0] + words[1] : words[0];
}

namespace {

// Loads libnvidia-ml.so.1 and binds its functions; *lib is the handle to dlclose.
absl::StatusOr<NvmlApi> LoadNvml(void** lib) {
  *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (*lib == nullptr) {
    const char* error = dlerror();
    return absl::UnavailableError(
        absl::StrCat("cannot load libnvidia-ml.so.1: ", error != nullptr ? error : "unknown"));
  }
  NvmlApi nvml{};
  Bind(*lib, "nvmlErrorString", &nvml.error_string);
  Bind(*lib, "nvmlDeviceGetUtilizationRates", &nvml.get_utilization);
  Bind(*lib, "nvmlDeviceGetTemperature", &nvml.get_temperature);
  Bind(*lib, "nvmlDeviceGetPowerUsage", &nvml.get_power);
  Bind(*lib, "nvmlDeviceGetTotalEccErrors", &nvml.get_ecc);
  bool bound = Bind(*lib, "nvmlInit_v2", &nvml.init) &&
               Bind(*lib, "nvmlShutdown", &nvml.shutdown) &&
               Bind(*lib, "nvmlDeviceGetCount_v2", &nvml.get_count) &&
               Bind(*lib, "nvmlDeviceGetHandleByIndex_v2", &nvml.get_handle) &&
               Bind(*lib, "nvmlDeviceGetName", &nvml.get_name) &&
               Bind(*lib, "nvmlDeviceGetUUID", &nvml.get_uuid) &&
               Bind(*lib, "nvmlDeviceGetMemoryInfo", &nvml.get_memory);
  if (!bound) {
    dlclose(*lib);
    return absl::UnavailableError("libnvidia-ml.so.1 lacks an NVML function");
  }
  if (NvmlReturn rc = nvml.init(); rc != kNvmlSuccess) {
    absl::Status s = NvmlError(nvml, "nvmlInit_v2", rc);
    dlclose(*lib);
    return s;
  }
  return nvml;
}

}  // namespace

absl::StatusOr<std::vector<GpuDevice>> DiscoverNvmlGpus() {
  void* lib = nullptr;
  absl::StatusOr<NvmlApi> nvml = LoadNvml(&lib);
  if (!nvml.ok()) return nvml.status();
  absl::StatusOr<std::vector<GpuDevice>> gpus = QueryNvml(*nvml);
  nvml->shutdown();
  dlclose(lib);
  return gpus;
}

absl::StatusOr<std::vector<GpuReading>> ReadNvmlGpus() {
  // Loaded and initialised once, for the life of the process: sampling every few seconds
  // should not pay nvmlInit each time.
  static absl::StatusOr<NvmlApi>* loaded = [] {
    void* lib = nullptr;
    return new absl::StatusOr<NvmlApi>(LoadNvml(&lib));
  }();
  static std::mutex mu;
  if (!loaded->ok()) return loaded->status();
  std::lock_guard<std::mutex> lock(mu);
  const NvmlApi& nvml = **loaded;
  absl::StatusOr<std::vector<GpuDevice>> devices = QueryNvml(nvml);
  if (!devices.ok()) return devices.status();
  std::vector<GpuReading> out;
  for (const GpuDevice& d : *devices) {
    GpuReading r{.index = d.index, .uuid = d.uuid, .model = d.model};
    NvmlDevice device = nullptr;
    if (nvml.get_handle(d.index, &device) != kNvmlSuccess) continue;
    if (NvmlMemory m{}; nvml.get_memory(device, &m) == kNvmlSuccess) {
      r.memory_used_bytes = static_cast<int64_t>(m.used);
      r.memory_total_bytes = static_cast<int64_t>(m.total);
    }
    if (NvmlUtilization u{};
        nvml.get_utilization != nullptr && nvml.get_utilization(device, &u) == kNvmlSuccess) {
      r.utilization_pct = u.gpu;
    }
    if (unsigned t = 0; nvml.get_temperature != nullptr &&
                        nvml.get_temperature(device, kNvmlTemperatureGpu, &t) == kNvmlSuccess) {
      r.temperature_c = t;
    }
    if (unsigned mw = 0; nvml.get_power != nullptr && nvml.get_power(device, &mw) == kNvmlSuccess) {
      r.power_w = mw / 1000.0;
    }
    if (unsigned long long n = 0;
        nvml.get_ecc != nullptr &&
        nvml.get_ecc(device, kNvmlMemoryErrorUncorrected, kNvmlVolatileEcc, &n) == kNvmlSuccess) {
      r.ecc_errors = static_cast<int64_t>(n);
    }
    out.push_back(std::move(r));
  }
  return out;
}

int64_t DetectCpuMillis() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int64_t millis = 1000;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) millis = int64_t{CPU_COUNT(&set)} * 1000;
  CgroupMounts mounts = DetectCgroupMounts();
  bool v2 = mounts.version == CgroupVersion::kV2;
  ForEachOwnCgroup(mounts.cpu_root, v2 ? "" : "cpu", [&](const std::string& dir) {
    int64_t quota = 0;
    int64_t period = 0;
    if (v2) {
      absl::StatusOr<std::string> max = ReadFile(dir + "/cpu.max");
      if (!max.ok()) return;
      std::vector<absl::string_view> parts =
          absl::StrSplit(absl::StripAsciiWhitespace(*max), ' ', absl::SkipEmpty());
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &quota) ||
          !absl::SimpleAtoi(parts[1], &period)) {
        return;  // "max 100000": no quota
      }
    } else {
      quota = ReadInt(dir + "/cpu.cfs_quota_us").value_or(-1);
      period = ReadInt(dir + "/cpu.cfs_period_us").value_or(0);
    }
    if (quota > 0 && period > 0) millis = std::min(millis, quota * 1000 / period);
  });
  return millis;
}

int64_t DetectMemoryBytes() {
  int64_t bytes = 0;
  absl::StatusOr<std::string> meminfo = ReadFile("/proc/meminfo");
  if (!meminfo.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*meminfo, '\n')) {
    int64_t kib = 0;
    if (absl::ConsumePrefix(&line, "MemTotal:") &&
        absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(line), " kB"), &kib)) {
      bytes = kib * 1024;
    }
  }
  CgroupMounts mounts = DetectCgroupMounts();
  bool v2 = mounts.version == CgroupVersion::kV2;
  ForEachOwnCgroup(mounts.memory_root, v2 ? "" : "memory", [&](const std::string& dir) {
    std::optional<int64_t> limit =
        ReadInt(dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"));  // v2 "max": none
    if (limit.has_value() && *limit > 0) bytes = std::min(bytes, *limit);
  });
  return bytes;
}

}  // namespace dlab
