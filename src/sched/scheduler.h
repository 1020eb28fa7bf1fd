// The first scheduler: a pure function from a snapshot (node capacity, allocations in use,
// queued jobs in queue order) to decisions (which jobs start with which allocation, why the rest
// wait). A job's tasks form a gang: all of them are placed at once or none is, so a waiting
// gang holds nothing. Strict FIFO within priority: the first job that does not fit blocks those
// behind it, so large jobs are not starved. Also the submit-time check (can this job ever run
// here?). Pure functions; thread-safe.
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

struct QueuedJob {
  int64_t job_id = 0;
  std::vector<Resources> tasks;  // by rank; the gang starts whole or not at all
  int64_t tenant_id = 0;
};

struct ScheduleInput {
  NodeCapacity node;
  std::vector<Allocation> in_use;  // allocations of attempts that hold resources now
  std::vector<QueuedJob> queue;    // in queue order (priority, submit time)
  // Tenants' quotas and what their running jobs hold now (UsageOf their allocations). A job
  // whose tenant is at its quota waits with a "tenant quota" reason without holding up other
  // tenants' jobs; within a tenant, jobs start in queue order.
  std::map<int64_t, TenantQuota> quotas;
  std::map<int64_t, TenantUsage> usage;
};

struct Placement {
  int64_t job_id = 0;
  Allocation allocation;
};

struct Waiting {
  int64_t job_id = 0;
  std::string reason;
};

struct ScheduleDecision {
  std::vector<Placement> start;
  std::vector<Waiting> wait;
};

ScheduleDecision ScheduleFifo(const ScheduleInput& input);

// InvalidArgument naming the field when the request (the tasks of one attempt, all on one
// node) exceeds what the node has in total, or asks for a GPU type it does not have, so it
// could never run.
absl::Status CheckCanEverRun(const std::vector<Resources>& tasks, const NodeCapacity& node);

// What an allocation counts against its tenant's quota: one running job, its CPUs, memory and
// GPUs (by the type of the slots it holds).
TenantUsage UsageOf(const Allocation& allocation, const NodeCapacity& node);

// What would exceed the quota if `add` came on top of `used`, e.g. "running_jobs: 3 of 3 in
// use"; empty when it fits. queued_jobs is not looked at (it is checked at submission).
std::string QuotaShortfall(const TenantQuota& quota, const TenantUsage& used,
                           const TenantUsage& add);

// PermissionDenied with the numbers when the job (its tasks together) asks for more than the
// tenant's quota allows at all, so that it could never start.
absl::Status CheckQuotaCanEverAdmit(const std::vector<Resources>& tasks, const TenantQuota& quota);

// Case-insensitive: the slot's type equals `type`, or its model name contains it. `type` may
// list acceptable types separated by commas ("H100,A100"): any of them matches.
bool GpuMatchesType(const GpuSlot& slot, const std::string& type);

// What the tasks miss on a node with `free` left, e.g. "cpus 2 (free 1), 2 GPUs (free 0)";
// empty when they fit.
std::string GangShortfall(const std::vector<Resources>& tasks, const NodeCapacity& free);

}  // namespace dlab
