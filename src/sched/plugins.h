// The plugin points of the scheduling framework (framework.h) and the registry that names them.
// A cycle takes queued jobs in the QueueSort order (tenants taking turns when the sort is per
// tenant), asks the Filters whether a job may start now (quota), places its gang whole or not
// at all on nodes in the Score order (pack or spread), lets the Reserve mode decide what a job
// that does not fit means for the jobs behind it (strict order, a backfill reservation, or
// nothing), and asks the Preempt plugin which running jobs may make room.
// Plugins are stateless apart from their parameters; they read the cluster through
// ClusterView. Not thread-safe (like the Scheduler that owns them).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/framework.h"
#include "sched/gittins.h"

namespace dlab {

// The framework's record of one job.
struct SchedJob {
  enum class Phase { kQueued, kRunning, kEvicting };
  JobRequest req;
  int gpus = 0;  // over all tasks
  Phase phase = Phase::kQueued;
  double queued_since = 0;           // when it last entered the queue
  double start_s = 0;                // start of the current attempt (running/evicting)
  double attained_gpu_s = 0;         // GPU-seconds in attempts that ended
  double service_offset = 0;         // service forgiven by a starvation promotion (las)
  double last_run_s = 0;             // how long its last attempt ran
  double saved_s = -1;               // its latest checkpoint (Scheduler::Checkpointed)
  std::vector<NodeTask> placed;      // while running or evicting
  std::vector<int64_t> waiting_for;  // victims being preempted for it
  std::vector<NodeTask> held;        // free room held for it meanwhile

  // Since when preempting it would lose its work: the start of its current attempt, or the
  // checkpoint it saved since.
  double LostSince() const { return std::max(start_s, saved_s); }
  double AttainedAt(double now) const {
    return attained_gpu_s + (phase == Phase::kQueued ? 0.0 : (now - start_s) * gpus);
  }
  // True remaining run time (oracle); +inf when unknown.
  double RemainingAt(double now) const {
    if (req.oracle_remaining_s < 0) return std::numeric_limits<double>::infinity();
    return req.oracle_remaining_s - (phase == Phase::kQueued ? 0.0 : now - start_s);
  }
};

// What plugins may read of the cluster.
class ClusterView {
 public:
  virtual ~ClusterView() = default;
  virtual double now() const = 0;
  virtual int total_gpus() const = 0;
  // GPUs the tenant's running (and evicting) jobs hold.
  virtual int TenantGpus(int64_t tenant) const = 0;
  // Dominant share (max of GPUs, CPUs, memory held over the cluster's total) over weight.
  virtual double TenantShare(int64_t tenant) const = 0;
  // Decayed average of TenantShare over the past (fair_share.half_life); 0 without history.
  virtual double TenantHistory(int64_t tenant) const = 0;
  virtual double TenantWeight(int64_t tenant) const = 0;
  // GPUs the tenant is entitled to now: the weighted max-min fair split of the cluster's GPUs
  // over the tenants' demands (GPUs held plus GPUs queued).
  virtual double TenantEntitlement(int64_t tenant) const = 0;
  // The job's expected run time: max_runtime, else the mean run time of its tenant's ended
  // jobs (else everyone's, else the policy's default).
  virtual double RuntimeEstimate(const SchedJob& job) const = 0;
  // The GPU-seconds of ended jobs (their service over all attempts): those of the tenant's jobs
  // with this many GPUs (null when none ended), and everyone's.
  virtual const ServiceSizes* TenantSizes(int64_t tenant, int gpus) const = 0;
  virtual const ServiceSizes& AllSizes() const = 0;
  // The geometric mean of the sizes (GPU-seconds) of the jobs that ended among the
  // Policy::neighbours jobs its tenant submitted just before this one with as many GPUs;
  // nullopt when none of them ended (or the policy keeps no neighbours). Such jobs are often
  // one sweep, and sizes within one run of submissions vary far less than over a tenant's.
  virtual std::optional<double> NeighbourSize(const SchedJob& job) const = 0;
  // The tenant's quota (null: none) and what its running jobs hold.
  virtual const TenantQuota* Quota(int64_t tenant) const = 0;
  virtual const TenantUsage& Usage(int64_t tenant) const = 0;
  // Every job that holds resources now.
  virtual void ForEachRunning(const std::function<void(const SchedJob&)>& fn) const = 0;
};

// Smaller first.
struct SortKey {
  double k0 = 0, k1 = 0, k2 = 0, k3 = 0;
  int64_t id = 0;
  bool operator<(const SortKey& o) const {
    if (k0 != o.k0) return k0 < o.k0;
    if (k1 != o.k1) return k1 < o.k1;
    if (k2 != o.k2) return k2 < o.k2;
    if (k3 != o.k3) return k3 < o.k3;
    return id < o.id;
  }
};

class QueueSortPlugin {
 public:
  virtual ~QueueSortPlugin() = default;
  // The key of a queued job; it must not change while the job waits, except at RekeyAt.
  virtual SortKey Key(const SchedJob& job, const ClusterView& view) const = 0;
  // When the key of a queued job changes on its own (a starvation promotion); unset: never.
  // The framework then calls Promote and takes the new Key.
  virtual std::optional<double> RekeyAt(const SchedJob& /*job*/) const { return std::nullopt; }
  virtual void Promote(SchedJob& /*job*/, double /*now*/) const {}
  // Whether Key reads the sizes of ended jobs (TenantSizes, AllSizes): the framework then
  // computes the keys of queued jobs again each time a tenth more jobs have ended.
  virtual bool KeysFollowHistory() const { return false; }
  // Tenants take turns: the tenant with the lowest TenantKey offers its next job. Within a cycle
  // a tenant's key may change only with what its own jobs hold (the framework keys again only
  // the tenant whose job it just considered).
  virtual bool ByTenant() const { return false; }
  virtual double TenantKey(int64_t /*tenant*/, const ClusterView& /*view*/) const { return 0; }
  // When a running job's standing changes with the service it receives (a las queue
  // threshold); unset: never.
  virtual std::optional<double> ChangeAt(const SchedJob& /*running*/, double /*now*/) const {
    return std::nullopt;
  }
};

class FilterPlugin {
 public:
  virtual ~FilterPlugin() = default;
  // Empty when the job may start now (if it fits), else the reason it waits.
  virtual std::string Filter(const SchedJob& job, const ClusterView& view) const = 0;
};

// Where a task goes among the nodes that can take it.
enum class ScoreMode {
  kPack,    // the node with the fewest free GPUs that fit (keeps whole nodes free for gangs)
  kSpread,  // the node with the most free GPUs
};

// What a queued job that does not fit means for the jobs behind it.
enum class ReserveMode {
  kStrict,    // nothing behind it starts (FIFO)
  kBackfill,  // the first such job gets a reservation; jobs behind it start only when they
              // end before it (by their estimate) or stay off its reserved nodes
  kNone,      // jobs behind it start when they fit (work-conserving)
};

class PreemptPlugin {
 public:
  virtual ~PreemptPlugin() = default;
  // Whether `victim` may be preempted to make room for `preemptor`. The framework has already
  // checked that the victim is preemptible and past its minimum run time.
  virtual bool MayPreempt(const SchedJob& preemptor, const SchedJob& victim,
                          const ClusterView& view) const = 0;
  // For the victim's record, e.g. "priority 10 > 0".
  virtual std::string Why(const SchedJob& preemptor, const SchedJob& victim,
                          const ClusterView& view) const = 0;
  // Preemptors with equal keys in one cycle may preempt the same victims (MayPreempt answers
  // alike for each), so the framework asks once per key and victim. Unset: asks for every
  // preemptor (the answer depends on what the cycle has started so far).
  virtual std::optional<std::pair<int, double>> PreemptorKey(const SchedJob& /*preemptor*/,
                                                             const ClusterView& /*view*/) const {
    return std::nullopt;
  }
};

// The values a policy parameter may take; a value outside them is refused, not clamped.
struct NumberRange {
  double min = 0;
  double max = std::numeric_limits<double>::infinity();
  bool above_min = false;  // min itself is refused
  bool whole = false;      // a count: no fraction
  bool duration = false;   // seconds, also written as a duration (5m, 1h30m)
};

// Parameters a policy was given, with their defaults; reading one marks it known.
class Params {
 public:
  Params(std::map<std::string, std::string> given) : given_(std::move(given)) {}
  // A number, or a duration in seconds ("5m"), within `range`.
  double Number(const std::string& key, double fallback, NumberRange range = {});
  std::vector<double> Numbers(const std::string& key, std::vector<double> fallback);
  std::string Text(const std::string& key, const std::string& fallback);
  // InvalidArgument for a bad value or a parameter no plugin read.
  absl::Status Check() const;
  const std::map<std::string, std::string>& defaults() const { return defaults_; }

 private:
  std::map<std::string, std::string> given_;
  std::map<std::string, std::string> defaults_;
  std::vector<std::string> errors_;
};

// A policy: one plugin of each kind.
struct Policy {
  std::string name;
  std::shared_ptr<const QueueSortPlugin> sort;
  std::vector<std::shared_ptr<const FilterPlugin>> filters;
  ScoreMode score = ScoreMode::kPack;
  ReserveMode reserve = ReserveMode::kStrict;
  std::shared_ptr<const PreemptPlugin> preempt;  // null: never preempts
  double min_runtime_s = 300;                    // never preempt a job that ran less than this
  int max_preemptions_per_cycle = 16;            // queued jobs that may preempt in one cycle
  double default_runtime_s = 3600;               // runtime estimate without max_runtime or history
  double history_half_life_s = 0;                // fair share's usage history; 0: none
  // With ReserveMode::kNone: the first job of a tenant below its entitlement that neither fits
  // nor finds victims gets a backfill reservation (the nodes it needs are drained for it).
  bool reserve_below_share = false;
  // A below-entitlement tenant's job that does not fit may also preempt jobs the Preempt plugin
  // would spare, when each can start again at once on another node (a move: it loses the work
  // since its checkpoint and a restart, its tenant nothing). Undoes fragmentation: free GPUs
  // scattered over nodes while a whole-node job waits.
  bool move_to_make_room = false;
  // The framework remembers, for each job, the jobs its tenant submitted just before it with as
  // many GPUs (this many; 0: none), and the sizes of those that ended (ClusterView::
  // NeighbourSize); a queued job's key is computed again when one of them ends.
  int neighbours = 0;
  std::map<std::string, std::string> params;  // every parameter, with the value in effect
};

// Plugins by name; refuses duplicate names. Policies are named lists of plugins.
class PluginRegistry {
 public:
  using SortFactory = std::function<std::shared_ptr<const QueueSortPlugin>(Params&)>;
  using PreemptFactory = std::function<std::shared_ptr<const PreemptPlugin>(Params&)>;
  using FilterFactory = std::function<std::shared_ptr<const FilterPlugin>(Params&)>;

  static PluginRegistry& Default();  // the plugins of plugins.cc

  absl::Status AddSort(const std::string& name, SortFactory f);
  absl::Status AddPreempt(const std::string& name, PreemptFactory f);
  absl::Status AddFilter(const std::string& name, FilterFactory f);

  struct PolicySpec {
    std::string sort;
    std::vector<std::string> filters;
    ReserveMode reserve = ReserveMode::kStrict;
    std::string preempt;  // empty: none
    double min_runtime_s = 300;
  };
  absl::Status AddPolicy(const std::string& name, PolicySpec spec);
  std::vector<std::string> PolicyNames() const;
  // InvalidArgument for an unknown policy, parameter or bad value.
  absl::StatusOr<Policy> Build(const std::string& name,
                               const std::map<std::string, std::string>& params) const;
  std::map<std::string, std::string> Defaults(const std::string& policy) const;

 private:
  std::map<std::string, SortFactory> sorts_;
  std::map<std::string, PreemptFactory> preempts_;
  std::map<std::string, FilterFactory> filters_;
  std::map<std::string, PolicySpec> policies_;
};

}  // namespace dlab
