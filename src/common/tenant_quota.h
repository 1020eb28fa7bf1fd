// A tenant's quota (what its jobs may hold at once) and its usage, with their JSON form in the
// API ("limits" and "used" of GET /api/v1/tenants/{name}/quota). A limit that is unset is
// unlimited. Plain value types and pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace dlab {

struct TenantQuota {
  std::optional<int> gpus;                   // all GPU types together
  std::map<std::string, int> gpus_by_type;   // per GPU type ("H100"); types not named: no limit
  std::optional<int64_t> cpu_millis;
  std::optional<int64_t> memory_bytes;
  std::optional<int> running_jobs;           // jobs holding resources (starting or running)
  std::optional<int> queued_jobs;            // jobs waiting in the queue
  bool operator==(const TenantQuota&) const = default;
};

struct TenantUsage {
  int gpus = 0;
  std::map<std::string, int> gpus_by_type;  // by the GPUs' short type
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  int running_jobs = 0;
  int queued_jobs = 0;

  TenantUsage& operator+=(const TenantUsage& other);
};

// {"gpus": 4, "gpus_by_type": {"H100": 2}, "cpus": "16", "memory": "64Gi", "running_jobs": 10,
// "queued_jobs": 100}; absent or null fields are unlimited. InvalidArgument naming the field.
absl::StatusOr<TenantQuota> TenantQuotaFromJson(const nlohmann::json& j);
nlohmann::json TenantQuotaToJson(const TenantQuota& q);  // unset limits as null
nlohmann::json TenantUsageToJson(const TenantUsage& u);

// The limit for GPUs of `type` (compared case-insensitively), if the quota has one.
std::optional<int> GpuTypeLimit(const TenantQuota& q, const std::string& type);

}  // namespace dlab
