#include "sim/sim_cli.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "sched/framework.h"
#include "sim/cluster_spec.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "sim/trace.h"
#include "sim/workload.h"

namespace dlab::sim {
namespace {

constexpr const char* kRestartCost = "restart_cost";
constexpr const char* kWeights = "weights";

struct Flags {
  std::string trace;
  std::string jobs;
  std::string window;
  std::string cluster;
  std::string policy = "fifo";
  std::vector<std::string> params;
  bool json = false;
  bool no_history = false;
  std::string per_job;  // --per-job FILE
};

// What the --param flags say: the scheduler's parameters and the simulator's own.
struct Params {
  SchedulerConfig config;
  SimOptions options;
  std::vector<std::pair<std::string, double>> weights;  // by tenant name, resolved later
};

std::string Footer() {
  return absl::StrCat(
      "\nPolicies: ", absl::StrJoin(PolicyNames(), ", "),
      ".\n--param KEY=VALUE sets a policy parameter (docs/scheduling.md) or one of the "
      "simulator's own:\n"
      "  restart_cost=SECONDS   what a preempted job pays when it next starts (default 30)\n"
      "  weights=TENANT:W,...   fair-share weights by tenant name as in the trace (default 1)\n"
      "\nTraces: Philly (job_id,submit_s,num_gpus,duration_s,gpu_type,vc; vc is the tenant),\n"
      "Alibaba cluster-trace-gpu-v2023 (..., gpu_milli, cpu_milli, memory_mib, qos, phase; qos\n"
      "Guaranteed/LS/Burstable/BE is priority 3/2/1/0; a share of one GPU (gpu_milli < 1000) is\n"
      "rounded up to a whole GPU, as dlab allocates whole GPUs; pods without a duration are left\n"
      "out and counted), or a generic CSV with job_id,submit_s,num_gpus,duration_s and optional\n"
      "tenant, priority, gpu_type, cpu_milli, memory_mib. A job larger than the largest node\n"
      "becomes a gang of node-sized tasks; jobs that could never run are skipped and counted.\n"
      "Percentiles are nearest-rank. See docs/simulator.md.\n");
}

absl::Status BadParam(const std::string& text, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("--param ", text, ": ", why));
}

absl::Status ParseWeights(const std::string& text, const std::string& value, Params* params) {
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    size_t colon = item.rfind(':');
    double weight = 0;
    if (colon == absl::string_view::npos || colon == 0 ||
        !absl::SimpleAtod(item.substr(colon + 1), &weight) || !std::isfinite(weight) ||
        weight <= 0) {
      return BadParam(text, "expected weights=TENANT:W,... with weights above 0");
    }
    std::string tenant(item.substr(0, colon));
    for (const auto& [named, w] : params->weights) {
      if (named == tenant) return BadParam(text, absl::StrCat("tenant '", tenant, "' twice"));
    }
    params->weights.emplace_back(std::move(tenant), weight);
  }
  return absl::OkStatus();
}

absl::StatusOr<Params> ParseParams(const Flags& flags) {
  Params params{.config = {.policy = flags.policy}};
  std::set<std::string> keys;
  for (const std::string& text : flags.params) {
    size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0) return BadParam(text, "expected KEY=VALUE");
    std::string key = text.substr(0, eq), value = text.substr(eq + 1);
    if (!keys.insert(key).second) {
      return BadParam(text, absl::StrCat(key, " is given twice; give each parameter once"));
    }
    if (key == kRestartCost) {
      double seconds = 0;
      if (!absl::SimpleAtod(value, &seconds) || !std::isfinite(seconds) || seconds < 0) {
        return BadParam(text, "expected a number of seconds, 0 or more");
      }
      params.options.restart_cost_s = seconds;
    } else if (key == kWeights) {
      if (absl::Status s = ParseWeights(text, value, &params); !s.ok()) return s;
    } else {
      params.config.params[key] = value;
    }
  }
  return params;
}

// The policy's parameters with their defaults, and the simulator's, for an error message.
std::string KnownParams(const std::string& policy) {
  std::vector<std::string> names = PolicyNames();
  std::string policies = absl::StrCat("policies: ", absl::StrJoin(names, ", "));
  if (std::find(names.begin(), names.end(), policy) == names.end()) return policies;
  std::vector<std::string> known;
  for (const auto& [key, value] : PolicyParams(policy)) {
    known.push_back(absl::StrCat(key, " (default ", value, ")"));
  }
  known.push_back(absl::StrCat(kRestartCost, " (default 30)"));
  known.push_back(absl::StrCat(kWeights, " (default 1 each)"));
  return absl::StrCat(policies, "\nparameters of ", policy, ": ", absl::StrJoin(known, ", "));
}

absl::StatusOr<JobSelection> Selection(const Flags& flags) {
  if (!flags.jobs.empty()) return ParseJobRange(flags.jobs);
  if (!flags.window.empty()) return ParseWindow(flags.window);
  return JobSelection{};
}

absl::Status ResolveWeights(const Params& params, const Workload& workload, SimOptions* options) {
  for (const auto& [name, weight] : params.weights) {
    auto it = std::find(workload.tenants.begin(), workload.tenants.end(), name);
    if (it == workload.tenants.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--param weights: no tenant '", name,
          "' among the simulated jobs (tenants: ", absl::StrJoin(workload.tenants, ", "), ")"));
    }
    options->tenant_weights[it - workload.tenants.begin() + 1] = weight;
  }
  return absl::OkStatus();
}

class SimCommand {
 public:
  SimCommand(const Flags& flags, std::ostream& out, std::ostream& err)
      : flags_(flags), out_(out), err_(err), start_(std::chrono::steady_clock::now()) {}

  int Run() {
    absl::StatusOr<JobSelection> selection = Selection(flags_);
    if (!selection.ok()) return Fail(selection.status(), kSimExitUsage);
    absl::StatusOr<std::vector<NodeCapacity>> nodes = ParseCluster(flags_.cluster);
    if (!nodes.ok()) return Fail(nodes.status(), kSimExitUsage);
    absl::StatusOr<Params> params = ParseParams(flags_);
    if (!params.ok()) return Fail(params.status(), kSimExitUsage);
    int cluster_nodes = static_cast<int>(nodes->size());
    absl::StatusOr<std::unique_ptr<Scheduler>> scheduler =
        NewScheduler(params->config, *std::move(nodes));
    if (!scheduler.ok()) {
      err_ << "dlab-sim: " << scheduler.status().message() << "\n"
           << KnownParams(flags_.policy) << "\n";
      return kSimExitUsage;
    }
    // The fairness measure's grace: the policy's minimum run time before preemption.
    params->options.fairness_grace_s = (*scheduler)->MinRuntime();
    absl::StatusOr<Trace> trace = LoadTrace(flags_.trace);
    if (!trace.ok()) return Fail(trace.status(), kSimExitFailure);
    std::vector<TraceJob> selected = SelectJobs(*trace, *selection);
    if (absl::Status s = CheckSelected(*trace, *selection, selected.size()); !s.ok()) {
      return Fail(s, kSimExitUsage);
    }
    Workload workload = BuildWorkload(selected, (*scheduler)->nodes());
    if (workload.jobs.empty()) {
      return Fail(
          absl::InvalidArgumentError(absl::StrCat(
              "no job to simulate: of the ", selected.size(), " selected, ", workload.skipped,
              " could never run on this cluster",
              workload.first_skipped.empty() ? "" : " (first: " + workload.first_skipped + ")",
              " and ", workload.no_duration, " have no duration")),
          kSimExitUsage);
    }
    if (absl::Status s = ResolveWeights(*params, workload, &params->options); !s.ok()) {
      return Fail(s, kSimExitUsage);
    }
    if (!flags_.no_history && (*scheduler)->LearnsFromEndedJobs()) {
      for (const EndedJob& job : EndedBefore(*trace, *selection, workload)) {
        (*scheduler)->RecordEnded(job.tenant_id, job.gpus, job.gpu_s);
      }
    }
    absl::StatusOr<SimResult> result = Simulate(workload, **scheduler, params->options);
    if (!result.ok()) return Fail(result.status(), kSimExitFailure);
    if (!flags_.per_job.empty()) {
      absl::Status written =
          WriteFileAtomically(flags_.per_job, PerJobCsv(workload, *result), {.sync = false});
      if (!written.ok()) return Fail(written, kSimExitFailure);
    }
    SimReport report{
        .trace = flags_.trace,
        .format = trace->format,
        .policy = flags_.policy,
        .params = params->config.params,
        .weights = params->weights,
        .restart_cost_s = params->options.restart_cost_s,
        .fairness_grace_s = params->options.fairness_grace_s,
        .cluster_nodes = cluster_nodes,
        .cluster_gpus = TotalGpus((*scheduler)->nodes()),
        .workload = &workload,
        .result = &*result,
        .sim_wall_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count()};
    if (flags_.json) {
      out_ << ReportJson(report).dump() << "\n";
    } else {
      out_ << ReportText(report);
    }
    return 0;
  }

 private:
  // An error when the selection is empty; a note on stderr when --jobs runs past the end.
  absl::Status CheckSelected(const Trace& trace, const JobSelection& selection, size_t selected) {
    size_t all = trace.jobs.size();
    if (all == 0) return absl::InvalidArgumentError(absl::StrCat(flags_.trace, ": no jobs"));
    if (selection.first && selected == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--jobs ", flags_.jobs, ": the trace has ", all, " jobs, 0 to ", all - 1));
    }
    if (selection.first && selected < selection.count) {
      err_ << "dlab-sim: --jobs " << flags_.jobs << ": the trace has " << all
           << " jobs; simulating the " << selected << " from " << *selection.first << "\n";
    }
    if (selection.from_s && selected == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--window ", flags_.window,
                       ": no job was submitted then (the trace's jobs were "
                       "submitted from ",
                       absl::StrFormat("%.15g", trace.jobs.front().submit_s), " to ",
                       absl::StrFormat("%.15g", trace.jobs.back().submit_s), " s)"));
    }
    return absl::OkStatus();
  }

  int Fail(const absl::Status& status, int exit_status) {
    err_ << "dlab-sim: " << status.message() << "\n";
    return exit_status;
  }

  const Flags& flags_;
  std::ostream& out_;
  std::ostream& err_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

int RunSimCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app(
      "Replays a GPU-cluster job trace through dlab's scheduler on a modeled cluster, with a "
      "simulated clock.",
      "dlab-sim");
  Flags flags;
  app.add_option("--trace", flags.trace, "the trace (CSV; the format is told by its header)")
      ->required();
  CLI::Option* jobs = app.add_option(
      "--jobs", flags.jobs, "FIRST:COUNT: the trace's jobs [FIRST, FIRST+COUNT) in submit order");
  app.add_option("--window", flags.window,
                 "FROM_S:TO_S: the jobs submitted in [FROM_S, TO_S) seconds of the trace")
      ->excludes(jobs);
  app.add_option("--cluster", flags.cluster,
                 "NODESxGPUS[:TYPE] (e.g. 16x8; each node with 8 CPUs and 64 GiB per GPU) or a "
                 "node file (sn,cpu_milli,memory_mib,gpu,model)")
      ->required();
  app.add_option("--policy", flags.policy, "the scheduling policy")->capture_default_str();
  app.add_option("--param", flags.params, "KEY=VALUE, repeatable; see below");
  app.add_flag("--json", flags.json, "print one JSON object instead of text");
  app.add_flag("--no-history", flags.no_history,
               "start the scheduler without the trace's jobs that ended before the window (by "
               "default it knows their sizes, as a dlabd running since the trace began would; "
               "only the gittins policy reads them)");
  app.add_option("--per-job", flags.per_job,
                 "also write every job's outcome to this CSV file (job_id, tenant, gpus, "
                 "priority, submit_s, duration_s, start_s, end_s, jct_s, queue_s, preemptions)");
  app.footer(Footer());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int status = app.exit(e, out, err);
    return status == 0 ? 0 : kSimExitUsage;
  }
  return SimCommand(flags, out, err).Run();
}

}  // namespace dlab::sim
