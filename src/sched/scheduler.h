// Placement helpers shared by the scheduling framework (framework.h) and the submit-time
// checks: can this job ever run here, does it fit its tenant's quota, what does a gang miss on
// a node. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/job.h"
#include "common/tenant_quota.h"

namespace dlab {

struct GpuSlot {
  int index = 0;
  std::string type;   // short type, e.g. "H100"
  std::string model;  // full model name, e.g. "NVIDIA H100 80GB HBM3"
};

struct NodeCapacity {
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  std::vector<GpuSlot> gpus;
};

// The largest of nodes (at least one): most GPUs, then CPUs, then memory.
const NodeCapacity& LargestNode(const std::vector<NodeCapacity>& nodes);

// InvalidArgument naming the field when the request (the tasks of one attempt, all on one
// node) exceeds what the node has in total, or asks for a GPU type it does not have, so it
// could never run.
absl::Status CheckCanEverRun(const std::vector<Resources>& tasks, const NodeCapacity& node);

// What an allocation counts against its tenant's quota: one running job, its CPUs, memory and
// GPUs (by the type of the slots it holds).
TenantUsage UsageOf(const Allocation& allocation, const NodeCapacity& node);

// GPUs of `type` (compared case-insensitively) in use.
int GpusOfType(const TenantUsage& used, const std::string& type);

// What would exceed the quota if `add` came on top of `used`, e.g. "running_jobs: 3 of 3 in
// use"; empty when it fits. queued_jobs is not looked at (it is checked at submission).
std::string QuotaShortfall(const TenantQuota& quota, const TenantUsage& used,
                           const TenantUsage& add);

// PermissionDenied with the numbers when the job (its tasks together) asks for more than the
// tenant's quota allows at all, so that it could never start.
absl::Status CheckQuotaCanEverAdmit(const std::vector<Resources>& tasks, const TenantQuota& quota);

// Case-insensitive: the slot's type equals `type`, or its model name contains it. `type` may
// list acceptable types separated by commas ("H100,A100"): any of them matches. A task's GPUs
// are all of one of the listed types, never a mix.
bool GpuMatchesType(const GpuSlot& slot, const std::string& type);
// The types `type` lists, in its order: "H100, A100" -> {"H100", "A100"}.
std::vector<std::string> GpuTypeChoices(const std::string& type);

// What the tasks miss on a node with `free` left, e.g. "cpus 2 (free 1), 2 GPUs (free 0)";
// empty when they fit.
std::string GangShortfall(const std::vector<Resources>& tasks, const NodeCapacity& free);

}  // namespace dlab
