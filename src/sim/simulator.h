// The trace simulator's engine: replays a workload through a Scheduler (the same code dlabd
// runs) against its modeled cluster on a simulated clock that jumps from event to event
// (arrivals, completions, and the scheduler's NextChange times). No processes run. A preempted
// job keeps its progress (it checkpointed in its grace period) and pays a restart cost when it
// next starts. Deterministic: ties are broken by job order. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/framework.h"
#include "sim/fairness_meter.h"
#include "sim/workload.h"

namespace dlab::sim {

struct SimOptions {
  double restart_cost_s = 30;                // added to a preempted job's next attempt
  std::map<int64_t, double> tenant_weights;  // by tenant id; tenants not named weigh 1
  int utilization_buckets = 50;
  // How long a tenant may be deprived before the fairness measure fair up to one job counts it
  // (TenantFairness::ratio_one_job); dlab-sim uses the policy's preemption.min_runtime.
  double fairness_grace_s = 0;
  // Cycles at one instant after which a scheduler that keeps preempting is reported as broken.
  int max_cycles_per_instant = 10000;
};

struct JobOutcome {
  std::optional<double> first_start_s;
  std::optional<double> end_s;  // unset: never finished (it could not start)
  int preemptions = 0;
};

struct SimResult {
  std::vector<JobOutcome> jobs;         // as the workload's jobs
  std::vector<TenantFairness> tenants;  // by tenant index (tenant_id - 1)
  // Average busy fraction of the cluster's GPUs in equal buckets of [0, makespan_s].
  std::vector<double> utilization_over_time;
  double busy_gpu_s = 0;  // GPU-seconds held by running jobs (restart costs included)
  double makespan_s = 0;  // last completion; the first job arrives at 0
  int64_t preemptions = 0;
  int64_t instants = 0;         // distinct event times simulated
  int64_t cycles = 0;           // Scheduler::Schedule calls
  int64_t unfinished = 0;       // still queued when nothing could change any more
  double scheduler_wall_s = 0;  // real time spent inside the scheduler's calls
};

// Runs the workload to its end. `scheduler` must be fresh (nothing queued or running); it gets
// the options' tenant weights. Internal when the scheduler decides about a job that is not in the
// state the decision needs (start a job that is not queued, preempt one that is not running), or
// keeps preempting at one instant.
absl::StatusOr<SimResult> Simulate(const Workload& workload, Scheduler& scheduler,
                                   const SimOptions& options);

}  // namespace dlab::sim
