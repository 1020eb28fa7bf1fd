// The jobs of a simulation: trace jobs turned into scheduler requests against the modeled
// cluster. A job larger than the largest node becomes a gang of node-sized tasks; jobs that could
// never run on the cluster, and jobs without a duration, are left out and counted. Pure
// functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sched/framework.h"
#include "sched/scheduler.h"
#include "sim/trace.h"

namespace dlab::sim {

// What a job asks per GPU when the trace does not say (Philly, generic); a CPU-only job asks
// for one GPU's worth.
inline constexpr int64_t kJobCpuMillisPerGpu = 1000;
inline constexpr int64_t kJobMemoryBytesPerGpu = int64_t{4} << 30;

struct SimJob {
  JobRequest request;  // id: index + 1; submit_s shifted so that the first job arrives at 0
  double duration_s = 0;
  int gpus = 0;  // of all its tasks
  std::string trace_id;
};

struct Workload {
  std::vector<SimJob> jobs;          // in arrival order (ties in trace order)
  std::vector<std::string> tenants;  // tenant_id i + 1 is tenants[i], by first appearance
  double shift_s = 0;                // subtracted from the trace's submit times
  int skipped = 0;                   // could never run on this cluster
  std::string first_skipped;         // the first of them and why, e.g. "job 17: tasks: ..."
  int no_duration = 0;               // no duration in the trace (Alibaba's Pending pods)
  int fractional_gpu = 0;            // asked for a share of one GPU, given a whole one
};

// The selected trace jobs (in submit order) as simulation jobs on `nodes`.
Workload BuildWorkload(const std::vector<TraceJob>& selected,
                       const std::vector<NodeCapacity>& nodes);

// A job that ended before the simulation began, as history for the scheduler
// (Scheduler::RecordEnded).
struct EndedJob {
  int64_t tenant_id = 0;  // as in the workload; tenants not in it are numbered after its own
  int gpus = 0;
  double gpu_s = 0;  // duration x GPUs
};

// The trace's jobs submitted before the selection whose submit time plus duration is at or
// before the workload's first arrival: what a scheduler running since the trace began would
// have seen end (the trace has no queueing delay, so a job counts as ending when it would
// have without waiting).
std::vector<EndedJob> EndedBefore(const Trace& trace, const JobSelection& selection,
                                  const Workload& workload);

// The tasks of a trace job: one of all its GPUs when it has at most `largest_gpus`, otherwise
// ceil(gpus / largest_gpus) tasks of largest_gpus (the last one the remainder). CPU and memory
// (the trace's, or the defaults per GPU) are split in proportion to GPUs, rounded up.
std::vector<Resources> TasksFor(const TraceJob& job, int largest_gpus);

}  // namespace dlab::sim
