// What dlab-sim reports about a run: the summary figures (job completion times with nearest-rank
// percentiles, queueing, makespan, GPU utilization, preemptions, fairness), as one JSON object or
// as readable text. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "sim/simulator.h"
#include "sim/trace.h"
#include "sim/workload.h"

namespace dlab::sim {

struct Summary {
  int64_t jobs = 0;      // simulated
  int64_t finished = 0;  // the figures below are over these
  double avg_jct_s = 0;  // job completion time: end - submit
  double p50_jct_s = 0;
  double p99_jct_s = 0;
  double avg_queue_s = 0;  // first start - submit, over the jobs that started
  double makespan_s = 0;
  double gpu_utilization = 0;  // busy GPU-seconds / (cluster GPUs * makespan)
  int64_t preemptions = 0;
  // Over tenants that had GPUs queued: the lowest time-averaged held/entitled ratio, and the
  // highest over the lowest (unset when the lowest is 0). Both 1 with one tenant.
  double fairness_min = 1;
  std::optional<double> fairness_max_over_min = 1;
  // The lowest TenantFairness::ratio_one_job over the same tenants, and the lowest busy_ratio
  // over the tenants that had work.
  double fairness_min_one_job = 1;
  double fairness_min_busy = 1;
};

// The value at `percent` (0-100] of sorted values by the nearest-rank method: the
// ceil(percent/100 * n)-th smallest. 0 for no values.
double NearestRank(const std::vector<double>& sorted, double percent);

Summary Summarize(const Workload& workload, const SimResult& result, int cluster_gpus);

// One run as dlab-sim reports it.
struct SimReport {
  std::string trace;  // the path
  TraceFormat format = TraceFormat::kGeneric;
  std::string policy;
  std::map<std::string, std::string> params;            // as given to the scheduler
  std::vector<std::pair<std::string, double>> weights;  // --param weights, by tenant name
  double restart_cost_s = 0;
  double fairness_grace_s = 0;  // SimOptions::fairness_grace_s
  int cluster_nodes = 0;
  int cluster_gpus = 0;
  const Workload* workload = nullptr;
  const SimResult* result = nullptr;
  double sim_wall_s = 0;  // the whole run, reading the trace included
};

// One object: the Summary's fields, skipped, no_duration, fractional_gpu, unfinished,
// utilization_over_time, tenant_fairness, policy, params, weights, cluster_gpus, sim_wall_s, ...
nlohmann::json ReportJson(const SimReport& report);
std::string ReportText(const SimReport& report);

// Every job of the run, one CSV row each in the workload's order, after a header (plain CSV
// as in sim/csv.h: the ids and tenants come from such a file, so they hold no commas):
// job_id,tenant,gpus,priority,submit_s,duration_s,start_s,end_s,jct_s,queue_s,preemptions.
// Times are seconds of the simulated clock (the first arrival at 0); start_s is the first start;
// start_s, end_s, jct_s and queue_s are empty for a job that never started or finished.
std::string PerJobCsv(const Workload& workload, const SimResult& result);

}  // namespace dlab::sim
