#include "common/tenant_quota.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/quantity.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;

constexpr int kMaxCount = 1'000'000;

absl::StatusOr<std::optional<int>> Count(const json& j, const char* field) {
  if (!j.contains(field) || j[field].is_null()) return std::optional<int>();
  const json& v = j[field];
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxCount) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be a whole number from 0 to ", kMaxCount, " or null (no limit)"));
  }
  return std::optional<int>(v.get<int>());
}

}  // namespace

absl::StatusOr<TenantQuota> TenantQuotaFromJson(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("quota: must be an object");
  static const char* const kKnown[] = {"gpus",         "gpus_by_type", "cpus",
                                       "memory",       "running_jobs", "queued_jobs"};
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          key, ": unknown field (known: gpus, gpus_by_type, cpus, memory, running_jobs, "
               "queued_jobs)"));
    }
  }
  TenantQuota q;
  for (auto [field, target] : {std::pair{"gpus", &q.gpus}, std::pair{"running_jobs", &q.running_jobs},
                               std::pair{"queued_jobs", &q.queued_jobs}}) {
    auto v = Count(j, field);
    if (!v.ok()) return v.status();
    *target = *v;
  }
  if (j.contains("gpus_by_type") && !j["gpus_by_type"].is_null()) {
    const json& types = j["gpus_by_type"];
    if (!types.is_object()) {
      return absl::InvalidArgumentError(
          "gpus_by_type: must be an object of GPU type to count, e.g. {\"H100\": 2}");
    }
    for (const auto& [type, n] : types.items()) {
      if (type.empty() || type.size() > 64) {
        return absl::InvalidArgumentError("gpus_by_type: a GPU type must be 1 to 64 characters");
      }
      if (!n.is_number_integer() || n.get<int64_t>() < 0 || n.get<int64_t>() > kMaxCount) {
        return absl::InvalidArgumentError(
            absl::StrCat("gpus_by_type.", type, ": must be a whole number from 0 to ", kMaxCount));
      }
      q.gpus_by_type[type] = n.get<int>();
    }
  }
  auto text = [&](const char* field) -> absl::StatusOr<std::optional<std::string>> {
    if (!j.contains(field) || j[field].is_null()) return std::optional<std::string>();
    if (j[field].is_string()) return std::optional<std::string>(j[field].get<std::string>());
    if (j[field].is_number()) return std::optional<std::string>(j[field].dump());
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be a quantity or null"));
  };
  auto cpus = text("cpus");
  if (!cpus.ok()) return cpus.status();
  if (*cpus) {
    auto m = ParseCpuMillis(**cpus);
    if (!m.ok()) return absl::InvalidArgumentError(absl::StrCat("cpus: ", m.status().message()));
    q.cpu_millis = *m;
  }
  auto memory = text("memory");
  if (!memory.ok()) return memory.status();
  if (*memory) {
    auto b = ParseMemoryBytes(**memory);
    if (!b.ok()) return absl::InvalidArgumentError(absl::StrCat("memory: ", b.status().message()));
    q.memory_bytes = *b;
  }
  return q;
}

json TenantQuotaToJson(const TenantQuota& q) {
  auto opt = [](const std::optional<int>& v) { return v ? json(*v) : json(nullptr); };
  return {{"gpus", opt(q.gpus)},
          {"gpus_by_type", q.gpus_by_type},
          {"cpus", q.cpu_millis ? json(FormatCpuMillis(*q.cpu_millis)) : json(nullptr)},
          {"memory", q.memory_bytes ? json(FormatMemoryBytes(*q.memory_bytes)) : json(nullptr)},
          {"running_jobs", opt(q.running_jobs)},
          {"queued_jobs", opt(q.queued_jobs)}};
}

json TenantUsageToJson(const TenantUsage& u) {
  return {{"gpus", u.gpus},
          {"gpus_by_type", u.gpus_by_type},
          {"cpus", FormatCpuMillis(u.cpu_millis)},
          {"memory", FormatMemoryBytes(u.memory_bytes)},
          {"running_jobs", u.running_jobs},
          {"queued_jobs", u.queued_jobs}};
}

TenantUsage& TenantUsage::operator+=(const TenantUsage& other) {
  gpus += other.gpus;
  for (const auto& [type, n] : other.gpus_by_type) gpus_by_type[type] += n;
  cpu_millis += other.cpu_millis;
  memory_bytes += other.memory_bytes;
  running_jobs += other.running_jobs;
  queued_jobs += other.queued_jobs;
  return *this;
}

std::optional<int> GpuTypeLimit(const TenantQuota& q, const std::string& type) {
  std::string want = absl::AsciiStrToLower(type);
  for (const auto& [t, n] : q.gpus_by_type) {
    if (absl::AsciiStrToLower(t) == want) return n;
  }
  return std::nullopt;
}

}  // namespace dlab
