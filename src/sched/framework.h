// The scheduling framework: a Scheduler holds the cluster (nodes, what runs where) and the queue,
// and decides in cycles which queued jobs start where and which running jobs are preempted. A
// policy (fifo, priority, backfill, fair-share, las, gittins, oracle-srtf) is a set of plugins
// registered by name: queue ordering, filtering (quota), scoring (pack or spread), reservation
// (strict order or backfill) and preemption; see docs/scheduling.md. The same code serves dlabd's
// JobController and the trace simulator (dlab-sim). Time is in seconds on the caller's clock. Not
// thread-safe: one owner calls it (the controller thread, or the simulator).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job.h"
#include "common/tenant_quota.h"
#include "sched/scheduler.h"

namespace dlab {

// A job as the scheduler sees it.
struct JobRequest {
  int64_t id = 0;
  int64_t tenant_id = 1;
  int priority = 0;
  double submit_s = 0;           // on the caller's clock
  std::vector<Resources> tasks;  // by rank; a gang: placed whole or not at all
  bool preemptible = true;
  double max_runtime_s = 0;        // the job's limit per attempt; 0: none
  double attained_gpu_s = 0;       // GPU-seconds received in earlier attempts
  double oracle_remaining_s = -1;  // true remaining run time; only the simulator knows it
};

// Where one task of a job runs: the node's index in the cluster and what it holds there.
struct NodeTask {
  int node = 0;
  TaskAllocation alloc;
  bool operator==(const NodeTask&) const = default;
};

// What a job of the tenant held from start_s to end_s (one attempt), for the usage history.
struct PastUse {
  int64_t tenant_id = 0;
  std::vector<NodeTask> tasks;
  double start_s = 0;
  double end_s = 0;
};

struct StartDecision {
  int64_t job_id = 0;
  std::vector<NodeTask> tasks;  // by rank
};

struct PreemptDecision {
  int64_t job_id = 0;   // the victim; it keeps its resources until Requeue or Remove
  int64_t for_job = 0;  // the queued job it makes room for
  std::string reason;   // e.g. "preempted for job 7 (priority 10 > 0)"
};

struct WaitReason {
  int64_t job_id = 0;
  std::string reason;
};

struct CycleResult {
  std::vector<StartDecision> start;      // already running in the scheduler's view
  std::vector<PreemptDecision> preempt;  // the caller stops them, then calls Requeue
  std::vector<WaitReason> wait;          // every queued job, in order; only when explain
};

// One queued job in scheduling order.
struct QueueEntry {
  int64_t job_id = 0;
  int64_t tenant_id = 0;
  std::string reason;
  std::optional<double> estimated_start_s;  // unset when unknown
};

struct SchedulerConfig {
  std::string policy = "fifo";
  // Policy parameters, e.g. {"preemption.min_runtime", "300"}; see docs/scheduling.md.
  std::map<std::string, std::string> params;
  // Fair-share weights by tenant name (dlabd's config); tenants not named weigh 1.
  std::map<std::string, double> tenant_weights;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Puts a job in the queue. The job's id must not be known already.
  virtual void Enqueue(const JobRequest& job, double now_s) = 0;
  // Records a job that is already running (found after a restart).
  virtual void AddRunning(const JobRequest& job, const std::vector<NodeTask>& tasks,
                          double start_s) = 0;
  // Forgets a job: a queued one leaves the queue, a running one frees what it held. `ended`:
  // the job is over, and its service counts among the ended jobs' sizes and run times; false
  // when it will be queued again (an attempt to be retried) or never ran (it was started but
  // not launched). Unknown ids are ignored.
  virtual void Remove(int64_t job_id, double now_s, bool ended) = 0;
  // A running job stopped without ending (preempted, or its node was lost): it frees what it
  // held and waits in the queue again, keeping the service it received.
  virtual void Requeue(int64_t job_id, double now_s) = 0;
  // A job this scheduler started could not be launched (no ports left, the store refused it):
  // it frees what it was given and waits in the queue again with the service, wait and place
  // it had (a Requeue would count the moment as a run); a claim it had on room made by
  // preempting others is not restored. False, and nothing done, for a job not running (e.g.
  // removed since).
  virtual bool Unstart(int64_t job_id) = 0;
  // The caller could not stop a job this scheduler chose to preempt (e.g. the store refused the
  // transition): it runs on, and the job that chose it stops waiting for it (a later cycle may
  // choose it again). Ignored for a job not being stopped.
  virtual void Unpreempt(int64_t job_id) = 0;

  // Whether the policy orders by the sizes of ended jobs (gittins); when not, RecordEnded does
  // nothing and callers need not look their history up.
  virtual bool LearnsFromEndedJobs() const = 0;
  // Seconds a job runs before the policy may preempt it (preemption.min_runtime); 0 for a
  // policy that never preempts.
  virtual double MinRuntime() const = 0;
  // History from before this scheduler began (dlabd's database, the trace before the
  // simulator's window): a job of the tenant with `gpus` GPUs ended after receiving `gpu_s`
  // GPU-seconds. The scheduler records the jobs that end through Remove(ended) itself.
  virtual void RecordEnded(int64_t tenant_id, int gpus, double gpu_s) = 0;

  // How far back fair share's usage history reaches: ten half-lives (older use weighs less
  // than 0.1%); unset when the policy keeps none.
  virtual std::optional<double> UsageHistorySpan() const = 0;
  // Rebuilds the usage history as of now_s from what tenants' jobs held before (dlabd's
  // database when it starts: ended attempts, and running ones up to now), replacing it.
  virtual void SetUsageHistory(const std::vector<PastUse>& past, double now_s) = 0;

  // The running job saved a checkpoint at `time_s`: preempting it from then on loses only the
  // work since (victims are chosen to lose the least). Ignored for a job not running.
  virtual void Checkpointed(int64_t job_id, double time_s) = 0;

  // The job's true remaining run time (the simulator, after a preemption: Requeue counts the
  // whole attempt as progress, but a resumed attempt may spend time restarting).
  virtual void SetOracleRemaining(int64_t job_id, double remaining_s) = 0;

  virtual void SetQuotas(std::map<int64_t, TenantQuota> quotas) = 0;
  // Fair-share weights; tenants not named weigh 1.
  virtual void SetTenantWeights(std::map<int64_t, double> weights) = 0;

  // One scheduling cycle. With explain, every queued job that does not start gets a reason.
  virtual CycleResult Schedule(double now_s, bool explain) = 0;
  // The earliest time after now at which a cycle could decide differently although no job
  // arrived or ended (a running job's service crosses a queue threshold, a waiting job is
  // promoted against starvation); unset when none.
  virtual std::optional<double> NextChange(double now_s) const = 0;

  // The queue in scheduling order with reasons and, where runtimes are known or estimated, the
  // estimated start: a forward simulation of the jobs running and queued now (those being
  // stopped leave at once), one cycle per job that ends and one more after a cycle that
  // preempts, for at most 1,000 cycles and `budget_s` seconds of wall time (with thousands of
  // jobs a cycle takes milliseconds); the jobs it did not reach get no estimate.
  virtual std::vector<QueueEntry> Queue(double now_s, double budget_s) const = 0;
  // A copy that shares nothing mutable with this scheduler (it has plugins of its own), so that
  // it can be read on another thread, e.g. its Queue while this one goes on scheduling.
  virtual std::unique_ptr<Scheduler> Clone() const = 0;

  virtual size_t queued() const = 0;
  virtual size_t running() const = 0;
  virtual const std::vector<NodeCapacity>& nodes() const = 0;
};

// InvalidArgument naming an unknown policy or parameter, or a bad value.
absl::StatusOr<std::unique_ptr<Scheduler>> NewScheduler(const SchedulerConfig& config,
                                                        std::vector<NodeCapacity> nodes);

// CheckCanEverRun for a cluster of nodes (at least one): every task must fit one node, and the
// tasks together must fit the empty cluster as the scheduler places gangs (a task never spans
// nodes). InvalidArgument naming the field otherwise.
absl::Status CheckCanEverRun(const std::vector<Resources>& tasks,
                             const std::vector<NodeCapacity>& nodes);

// The policies, and the parameters each accepts with their defaults, for --help and errors.
std::vector<std::string> PolicyNames();
std::map<std::string, std::string> PolicyParams(const std::string& policy);

}  // namespace dlab
