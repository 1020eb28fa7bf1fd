#include "sched/framework.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <set>
#include <tuple>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "sched/plugins.h"

namespace dlab {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// GPUs of one node grouped by what they are: nodes whose GPUs are all of one type form a
// class that a type request accepts or refuses as a whole.
struct NodeState {
  const NodeCapacity* cap = nullptr;  // owned by the Pool's shared capacities
  int64_t free_cpu = 0;
  int64_t free_memory = 0;
  std::vector<char> slot_free;  // by position in cap.gpus
  int free_gpus = 0;
  int klass = 0;
};

struct NodeClass {
  bool uniform = true;  // every GPU of its nodes has the type and model of `rep`
  GpuSlot rep;
  std::set<std::pair<int, int>> by_free;  // (free GPUs, node)
};

// Accepts a GPU slot for a task: its type request and, for quotas, the types still allowed.
using SlotFilter = std::function<bool(const GpuSlot&)>;

struct Reservation {
  int64_t job_id = 0;
  double start_s = kInf;
  std::set<int> nodes;
};

// The nodes and what is free on each, indexed for placement. Cheap to copy (capacities are
// shared), so that a reservation or a preemption can be tried on a copy.
class Pool {
 public:
  Pool() = default;
  Pool(std::vector<NodeCapacity> capacities, ScoreMode score)
      : caps_(std::make_shared<const std::vector<NodeCapacity>>(std::move(capacities))),
        score_(score) {
    std::map<std::string, int> class_of;
    for (const NodeCapacity& cap : *caps_) {
      NodeState n{.cap = &cap,
                  .free_cpu = cap.cpu_millis,
                  .free_memory = cap.memory_bytes,
                  .slot_free = std::vector<char>(cap.gpus.size(), 1),
                  .free_gpus = static_cast<int>(cap.gpus.size())};
      bool uniform = true;
      for (const GpuSlot& s : cap.gpus) {
        uniform = uniform && s.type == cap.gpus[0].type && s.model == cap.gpus[0].model;
      }
      std::string key = cap.gpus.empty() ? "-"
                        : uniform ? absl::StrCat("u:", cap.gpus[0].type, "\n", cap.gpus[0].model)
                                  : "mixed";
      auto [it, added] = class_of.emplace(key, static_cast<int>(classes_.size()));
      if (added) {
        classes_.push_back({.uniform = uniform && !cap.gpus.empty(),
                            .rep = cap.gpus.empty() ? GpuSlot{} : cap.gpus[0]});
      }
      n.klass = it->second;
      classes_[n.klass].by_free.insert({n.free_gpus, static_cast<int>(nodes_.size())});
      free_gpus_ += n.free_gpus;
      nodes_.push_back(std::move(n));
    }
  }

  const std::vector<NodeCapacity>& capacities() const { return *caps_; }
  const std::vector<NodeState>& nodes() const { return nodes_; }
  const std::vector<NodeClass>& classes() const { return classes_; }
  int free_gpus() const { return free_gpus_; }
  // Counts the changes to what is free: equal counts, the same free resources.
  uint64_t changes() const { return changes_; }

  void MoveInIndex(int node, int new_free) {
    ++changes_;
    NodeState& n = nodes_[node];
    auto& index = classes_[n.klass].by_free;
    index.erase({n.free_gpus, node});
    free_gpus_ += new_free - n.free_gpus;
    n.free_gpus = new_free;
    index.insert({n.free_gpus, node});
  }

  void Hold(int node, const TaskAllocation& a) {
    NodeState& n = nodes_[node];
    n.free_cpu -= a.cpu_millis;
    n.free_memory -= a.memory_bytes;
    int taken = 0;
    for (int index : a.gpus) {
      for (size_t p = 0; p < n.cap->gpus.size(); ++p) {
        if (n.cap->gpus[p].index == index && n.slot_free[p]) {
          n.slot_free[p] = 0;
          ++taken;
        }
      }
    }
    MoveInIndex(node, n.free_gpus - taken);
  }

  void Release(int node, const TaskAllocation& a) {
    NodeState& n = nodes_[node];
    n.free_cpu += a.cpu_millis;
    n.free_memory += a.memory_bytes;
    int given = 0;
    for (int index : a.gpus) {
      for (size_t p = 0; p < n.cap->gpus.size(); ++p) {
        if (n.cap->gpus[p].index == index && !n.slot_free[p]) {
          n.slot_free[p] = 1;
          ++given;
        }
      }
    }
    MoveInIndex(node, n.free_gpus + given);
  }

  static bool TypeOk(const GpuSlot& s, const std::string& type) {
    return type.empty() || GpuMatchesType(s, type);
  }

  // Free GPUs of the node of `type` (one type, not a list) that `allowed` accepts.
  int FreeOfType(const NodeState& n, const std::string& type, const SlotFilter& allowed) const {
    int usable = 0;
    for (size_t p = 0; p < n.cap->gpus.size(); ++p) {
      if (n.slot_free[p] && TypeOk(n.cap->gpus[p], type) && (!allowed || allowed(n.cap->gpus[p]))) {
        ++usable;
      }
    }
    return usable;
  }
  // Free GPUs of the node that the task may take: of one type when it lists several.
  int UsableGpus(const NodeState& n, const Resources& r, const SlotFilter& allowed) const {
    const NodeClass& c = classes_[n.klass];
    if (c.uniform) return n.free_gpus;
    if (r.gpu_type.find(',') == std::string::npos) return FreeOfType(n, r.gpu_type, allowed);
    int most = 0;
    for (const std::string& one : GpuTypeChoices(r.gpu_type)) {
      most = std::max(most, FreeOfType(n, one, allowed));
    }
    return most;
  }
  // The one type of a listed several that the task takes on the node: the first listed of which
  // enough are free.
  std::string TypeToTake(const NodeState& n, const Resources& r, const SlotFilter& allowed) const {
    if (r.gpu_type.find(',') == std::string::npos) return r.gpu_type;
    std::vector<std::string> choices = GpuTypeChoices(r.gpu_type);
    for (const std::string& one : choices) {
      if (FreeOfType(n, one, allowed) >= r.gpus) return one;
    }
    return choices.empty() ? r.gpu_type : choices.front();
  }

  bool NodeFits(const NodeState& n, const Resources& r, const SlotFilter& allowed) const {
    return n.free_cpu >= r.cpu_millis && n.free_memory >= r.memory_bytes &&
           (r.gpus == 0 || UsableGpus(n, r, allowed) >= r.gpus);
  }

  // The best node for the task by the Score mode, other than `except`; -1 when none can take it.
  int FindNode(const Resources& r, const SlotFilter& allowed, int except = -1) const {
    auto usable = [&](int node) { return node != except && NodeFits(nodes_[node], r, allowed); };
    int best = -1;
    for (const NodeClass& c : classes_) {
      if (r.gpus > 0 && c.uniform && (!TypeOk(c.rep, r.gpu_type) || (allowed && !allowed(c.rep)))) {
        continue;
      }
      if (r.gpus > 0 && c.by_free.empty()) continue;
      int found = -1;
      if (score_ == ScoreMode::kSpread && r.gpus > 0) {
        for (auto it = c.by_free.rbegin(); it != c.by_free.rend() && it->first >= r.gpus; ++it) {
          if (usable(it->second)) {
            found = it->second;
            break;
          }
        }
      } else {
        for (auto it = c.by_free.lower_bound({r.gpus, -1}); it != c.by_free.end(); ++it) {
          if (usable(it->second)) {
            found = it->second;
            break;
          }
        }
      }
      if (found < 0) continue;
      bool better = best < 0 || (score_ == ScoreMode::kSpread && r.gpus > 0
                                     ? nodes_[found].free_gpus > nodes_[best].free_gpus
                                     : nodes_[found].free_gpus < nodes_[best].free_gpus);
      if (better) best = found;
    }
    return best;
  }

  TaskAllocation Take(int node, const Resources& r, const SlotFilter& allowed) {
    NodeState& n = nodes_[node];
    TaskAllocation a{.cpu_millis = r.cpu_millis, .memory_bytes = r.memory_bytes};
    std::string type = r.gpus > 0 ? TypeToTake(n, r, allowed) : r.gpu_type;
    for (size_t p = 0; p < n.cap->gpus.size() && static_cast<int>(a.gpus.size()) < r.gpus; ++p) {
      if (n.slot_free[p] && TypeOk(n.cap->gpus[p], type) && (!allowed || allowed(n.cap->gpus[p]))) {
        a.gpus.push_back(n.cap->gpus[p].index);
      }
    }
    std::sort(a.gpus.begin(), a.gpus.end());
    Hold(node, a);
    return a;
  }

  // Places every task or none (the gang's Permit): all on one node when they fit there.
  std::optional<std::vector<NodeTask>> Place(const std::vector<Resources>& tasks,
                                             const SlotFilter& allowed) {
    std::vector<NodeTask> placed;
    if (tasks.size() > 1) {
      bool one_type = std::all_of(tasks.begin(), tasks.end(), [&](const Resources& r) {
        return r.gpu_type == tasks[0].gpu_type;
      });
      if (one_type) {
        Resources sum{.cpu_millis = 0, .memory_bytes = 0, .gpu_type = tasks[0].gpu_type};
        for (const Resources& r : tasks) {
          sum.cpu_millis += r.cpu_millis;
          sum.memory_bytes += r.memory_bytes;
          sum.gpus += r.gpus;
        }
        if (int node = FindNode(sum, allowed); node >= 0) {
          // One GPU type for the whole gang where its tasks list several.
          std::string type = TypeToTake(nodes_[node], sum, allowed);
          for (Resources r : tasks) {
            r.gpu_type = type;
            placed.push_back({node, Take(node, r, allowed)});
          }
          return placed;
        }
      }
    }
    for (const Resources& r : tasks) {
      int node = FindNode(r, allowed);
      if (node < 0) {
        for (const NodeTask& t : placed) Release(t.node, t.alloc);
        return std::nullopt;
      }
      placed.push_back({node, Take(node, r, allowed)});
    }
    return placed;
  }

 private:
  std::shared_ptr<const std::vector<NodeCapacity>> caps_;
  ScoreMode score_ = ScoreMode::kPack;
  std::vector<NodeState> nodes_;
  std::vector<NodeClass> classes_;
  int free_gpus_ = 0;
  uint64_t changes_ = 0;
};

class Impl final : public Scheduler, public ClusterView {
 public:
  Impl(Policy policy, std::vector<NodeCapacity> nodes)
      : policy_(std::move(policy)), pool_(std::move(nodes), policy_.score) {
    for (const NodeCapacity& n : pool_.capacities()) {
      total_gpus_ += static_cast<int>(n.gpus.size());
      total_cpu_ += n.cpu_millis;
      total_memory_ += n.memory_bytes;
    }
  }
  Impl(const Impl&) = default;

  // ---- Scheduler ----

  void Enqueue(const JobRequest& req, double now) override {
    if (jobs_.contains(req.id)) Remove(req.id, now, /*ended=*/false);
    SchedJob job{.req = req, .queued_since = now, .attained_gpu_s = req.attained_gpu_s};
    for (const Resources& r : req.tasks) job.gpus += r.gpus;
    auto [it, added] = jobs_.emplace(req.id, std::move(job));
    now_ = now;
    Link(it->second);
    PutInQueue(it->second);
  }

  void AddRunning(const JobRequest& req, const std::vector<NodeTask>& tasks,
                  double start_s) override {
    if (jobs_.contains(req.id)) Remove(req.id, start_s, /*ended=*/false);
    SchedJob job{.req = req, .attained_gpu_s = req.attained_gpu_s};
    for (const Resources& r : req.tasks) job.gpus += r.gpus;
    job.phase = SchedJob::Phase::kRunning;
    job.start_s = start_s;
    for (const NodeTask& t : tasks) {
      if (t.node < 0 || t.node >= static_cast<int>(pool_.nodes().size())) continue;
      pool_.Hold(t.node, t.alloc);
      job.placed.push_back(t);
    }
    auto [it, added] = jobs_.emplace(req.id, std::move(job));
    Account(it->second, +1);  // after the move: the preemption index keeps the job's address
    Link(it->second);
  }

  void Remove(int64_t id, double now, bool ended) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    SchedJob& job = it->second;
    if (job.phase == SchedJob::Phase::kQueued) {
      TakeFromQueue(job);
      Unhold(job);
      nominated_.erase(id);
      Unlink(job, -1);
    } else {
      double size = -1;  // unknown: the job is not over
      if (ended) {
        double ran = std::max(0.0, now - job.start_s);
        RuntimeStats& stats = runtimes_[job.req.tenant_id];
        stats.sum += ran;
        ++stats.count;
        all_runtimes_.sum += ran;
        ++all_runtimes_.count;
        size = job.AttainedAt(now);
        RecordEnded(job.req.tenant_id, job.gpus, size);
      }
      Unlink(job, size);
      Free(job);
    }
    jobs_.erase(it);
  }

  bool LearnsFromEndedJobs() const override { return policy_.sort->KeysFollowHistory(); }
  double MinRuntime() const override { return policy_.preempt ? policy_.min_runtime_s : 0; }
  void RecordEnded(int64_t tenant_id, int gpus, double gpu_s) override {
    if (!LearnsFromEndedJobs()) return;
    sizes_[{tenant_id, gpus}].Add(gpu_s);
    all_sizes_.Add(gpu_s);
  }

  void Requeue(int64_t id, double now) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.phase == SchedJob::Phase::kQueued) return;
    SchedJob& job = it->second;
    double ran = std::max(0.0, now - job.start_s);
    job.attained_gpu_s += ran * job.gpus;
    job.last_run_s = ran;
    if (job.req.oracle_remaining_s >= 0) {
      job.req.oracle_remaining_s = std::max(0.0, job.req.oracle_remaining_s - ran);
    }
    Free(job);
    job.queued_since = now;
    now_ = now;
    PutInQueue(job);
  }

  bool Unstart(int64_t id) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.phase != SchedJob::Phase::kRunning) return false;
    Free(it->second);
    PutInQueue(it->second);
    return true;
  }

  void Unpreempt(int64_t id) override {
    auto it = jobs_.find(id);
    if (it != jobs_.end() && it->second.phase == SchedJob::Phase::kEvicting) {
      it->second.phase = SchedJob::Phase::kRunning;
    }
  }

  void Checkpointed(int64_t id, double time_s) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.phase == SchedJob::Phase::kQueued) return;
    SchedJob& job = it->second;
    if (!(time_s > job.LostSince())) return;
    IndexPreemptible(job, false);  // its place among the candidates follows
    job.saved_s = time_s;
    IndexPreemptible(job, true);
  }

  void SetOracleRemaining(int64_t id, double remaining_s) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.req.oracle_remaining_s == remaining_s) return;
    SchedJob& job = it->second;
    bool queued = job.phase == SchedJob::Phase::kQueued;
    if (queued) TakeFromQueue(job);  // its key may depend on it
    job.req.oracle_remaining_s = remaining_s;
    if (queued) PutInQueue(job);
  }

  void SetQuotas(std::map<int64_t, TenantQuota> quotas) override { quotas_ = std::move(quotas); }
  void SetTenantWeights(std::map<int64_t, double> weights) override {
    weights_ = std::move(weights);
  }

  CycleResult Schedule(double now, bool explain) override;
  std::optional<double> NextChange(double now) const override;
  std::vector<QueueEntry> Queue(double now, double budget_s) const override;
  std::unique_ptr<Scheduler> Clone() const override {
    auto copy = std::make_unique<Impl>(*this);
    // Plugins keep caches (gittins' index tables): the copy builds its own from the same
    // parameters. That cannot fail: this scheduler's plugins were built from them.
    auto fresh = PluginRegistry::Default().Build(policy_.name, policy_.params);
    DLAB_CHECK(fresh.ok());  // sharing the plugins would share their caches between threads
    copy->policy_ = *std::move(fresh);
    return copy;
  }

  size_t queued() const override { return queued_count_; }
  size_t running() const override { return jobs_.size() - queued_count_; }
  const std::vector<NodeCapacity>& nodes() const override { return pool_.capacities(); }

  // ---- ClusterView ----

  double now() const override { return now_; }
  int total_gpus() const override { return total_gpus_; }
  int TenantGpus(int64_t tenant) const override { return Usage(tenant).gpus; }
  double TenantShare(int64_t tenant) const override { return ShareOf(tenant, Usage(tenant)); }
  // The tenant's dominant share (over its weight) if it held u.
  double ShareOf(int64_t tenant, const TenantUsage& u) const {
    double share = 0;
    if (total_gpus_ > 0) share = std::max(share, static_cast<double>(u.gpus) / total_gpus_);
    if (total_cpu_ > 0) share = std::max(share, static_cast<double>(u.cpu_millis) / total_cpu_);
    if (total_memory_ > 0) {
      share = std::max(share, static_cast<double>(u.memory_bytes) / total_memory_);
    }
    return share / TenantWeight(tenant);
  }
  double TenantHistory(int64_t tenant) const override {
    auto it = history_.find(tenant);
    return it == history_.end() ? 0 : it->second;
  }
  double TenantWeight(int64_t tenant) const override {
    auto it = weights_.find(tenant);
    return it == weights_.end() || it->second <= 0 ? 1.0 : it->second;
  }
  double TenantEntitlement(int64_t tenant) const override {
    auto it = entitlement_.find(tenant);
    return it == entitlement_.end() ? 0 : it->second;
  }
  double RuntimeEstimate(const SchedJob& job) const override {
    return KnownRuntime(job).value_or(policy_.default_runtime_s);
  }
  const ServiceSizes* TenantSizes(int64_t tenant, int gpus) const override {
    auto it = sizes_.find({tenant, gpus});
    return it == sizes_.end() ? nullptr : &it->second;
  }
  const ServiceSizes& AllSizes() const override { return all_sizes_; }
  std::optional<double> NeighbourSize(const SchedJob& job) const override {
    auto it = neighbours_.find(job.req.id);
    if (it == neighbours_.end() || it->second.near_gpu_s < 0) return std::nullopt;
    return it->second.near_gpu_s;
  }
  const TenantQuota* Quota(int64_t tenant) const override {
    auto it = quotas_.find(tenant);
    return it == quotas_.end() ? nullptr : &it->second;
  }
  const TenantUsage& Usage(int64_t tenant) const override {
    static const TenantUsage kNone;
    auto it = usage_.find(tenant);
    return it == usage_.end() ? kNone : it->second;
  }
  void ForEachRunning(const std::function<void(const SchedJob&)>& fn) const override {
    for (const auto& [id, job] : jobs_) {
      if (job.phase != SchedJob::Phase::kQueued) fn(job);
    }
  }

 private:
  struct RuntimeStats {
    double sum = 0;
    int64_t count = 0;
  };
  // What one cycle has decided so far.
  struct Cycle {
    bool explain = false;
    CycleResult result;
    std::vector<int64_t> order;  // jobs considered, in order (explain only)
    int64_t strict_blocker = 0;
    std::map<int64_t, std::string> tenant_blocked;  // tenant -> reason for its later jobs
    std::optional<Reservation> reservation;
    int preemptions_left = 0;
    // Single-task requests that did not fit, by GPU type: anything needing as much fails too.
    std::map<std::string, std::vector<Resources>> failed;
    // The same for preemption: requests for which no victims would make room.
    std::map<std::string, std::vector<Resources>> cannot_preempt;
    std::optional<std::vector<std::pair<double, const SchedJob*>>> preemptible;
    // MayPreempt's answers by PreemptorKey, for each of `preemptible` (2: not asked yet).
    std::map<std::pair<int, double>, std::vector<char>> eligible;
    std::set<int64_t> started;  // in this cycle: never victims of the same cycle
    // Shortfall's answers, while the pool has made shortfall_at changes.
    std::vector<std::pair<std::vector<Resources>, std::string>> shortfalls;
    uint64_t shortfall_at = 0;
  };

  std::optional<double> KnownRuntime(const SchedJob& job) const {
    if (job.req.max_runtime_s > 0) return job.req.max_runtime_s;
    auto it = runtimes_.find(job.req.tenant_id);
    if (it != runtimes_.end() && it->second.count > 0) return it->second.sum / it->second.count;
    if (all_runtimes_.count > 0) return all_runtimes_.sum / all_runtimes_.count;
    return std::nullopt;
  }

  // ---- the queue ----

  std::set<SortKey>& QueueOf(int64_t tenant) {
    return queues_[policy_.sort->ByTenant() ? tenant : 0];
  }

  // Keeps waiting_for: a job re-keyed in the queue (promoted) still waits for its victims.
  void PutInQueue(SchedJob& job) {
    job.phase = SchedJob::Phase::kQueued;
    job.placed.clear();
    SortKey key = policy_.sort->Key(job, *this);
    keys_[job.req.id] = key;
    QueueOf(job.req.tenant_id).insert(key);
    ++queued_count_;
    queued_without_gpus_ += job.gpus == 0;
    queued_gpus_[job.req.tenant_id] += job.gpus;
    if (auto at = policy_.sort->RekeyAt(job)) promotions_.insert({*at, job.req.id});
  }

  void TakeFromQueue(SchedJob& job) {
    auto key = keys_.find(job.req.id);
    if (key == keys_.end()) return;
    QueueOf(job.req.tenant_id).erase(key->second);
    keys_.erase(key);
    --queued_count_;
    queued_without_gpus_ -= job.gpus == 0;
    queued_gpus_[job.req.tenant_id] -= job.gpus;
    if (auto at = policy_.sort->RekeyAt(job)) promotions_.erase({*at, job.req.id});
  }

  // The keys of queued jobs computed again, when the sort reads the sizes of ended jobs and a
  // tenth more have ended since the last time.
  void RekeyForHistory() {
    if (!LearnsFromEndedJobs()) return;
    if (!ServiceSizes::GrewByATenth(all_sizes_.count(), rekeyed_at_)) return;
    rekeyed_at_ = all_sizes_.count();
    for (auto& [id, key] : keys_) Rekey(jobs_.at(id), key);
  }
  // A queued job's key (its entry in keys_) computed again.
  void Rekey(const SchedJob& job, SortKey& key) {
    std::set<SortKey>& queue = QueueOf(job.req.tenant_id);
    queue.erase(key);
    key = policy_.sort->Key(job, *this);
    queue.insert(key);
  }

  // ---- Neighbours (Policy::neighbours) ----

  // A job seen for the first time is linked to the latest jobs of its tenant with as many GPUs.
  void Link(const SchedJob& job) {
    if (policy_.neighbours <= 0) return;
    auto [it, added] = neighbours_.try_emplace(job.req.id);
    it->second.live = true;
    it->second.ended_gpu_s = -1;
    if (!added) return;
    std::deque<int64_t>& latest = latest_[{job.req.tenant_id, job.gpus}];
    for (auto b = latest.rbegin(); b != latest.rend(); ++b) {
      it->second.before.push_back(*b);
      neighbours_.at(*b).after.push_back(job.req.id);
    }
    it->second.near_gpu_s = NearSize(it->second.before);
    latest.push_back(job.req.id);
    if (latest.size() > static_cast<size_t>(policy_.neighbours)) {
      int64_t oldest = latest.front();
      latest.pop_front();
      neighbours_.at(oldest).latest = false;
      ForgetIfUnread(oldest);
    }
  }
  // The job ended (`gpu_s` >= 0: its size) or left the queue: the keys of the queued jobs
  // linked to it follow.
  void Unlink(const SchedJob& job, double gpu_s) {
    auto it = neighbours_.find(job.req.id);
    if (it == neighbours_.end()) return;
    it->second.live = false;
    it->second.ended_gpu_s = gpu_s;
    if (gpu_s >= 0) {
      for (int64_t id : it->second.after) {
        auto after = neighbours_.find(id);
        if (after == neighbours_.end() || !after->second.live) continue;
        after->second.near_gpu_s = NearSize(after->second.before);
        auto key = keys_.find(id);
        if (key != keys_.end()) Rekey(jobs_.at(id), key->second);
      }
    }
    std::vector<int64_t> check = it->second.before;
    check.push_back(job.req.id);
    for (int64_t id : check) ForgetIfUnread(id);
  }
  // The geometric mean of the sizes of the ended jobs among `before`; -1: none ended.
  double NearSize(const std::vector<int64_t>& before) const {
    double log_sum = 0;
    int ended = 0;
    for (int64_t id : before) {
      auto b = neighbours_.find(id);
      if (b == neighbours_.end() || b->second.ended_gpu_s < 0) continue;
      log_sum += std::log(std::max(1.0, b->second.ended_gpu_s));
      ++ended;
    }
    return ended == 0 ? -1 : std::exp(log_sum / ended);
  }
  // Drops a job's entry once nothing can read it: it is gone, no later job will link to it, and
  // every job linked to it is gone.
  void ForgetIfUnread(int64_t id) {
    auto it = neighbours_.find(id);
    if (it == neighbours_.end() || it->second.live || it->second.latest) return;
    for (int64_t after : it->second.after) {
      auto a = neighbours_.find(after);
      if (a != neighbours_.end() && a->second.live) return;
    }
    neighbours_.erase(it);
  }

  void PromoteDue(double now) {
    while (!promotions_.empty() && promotions_.begin()->first <= now) {
      int64_t id = promotions_.begin()->second;
      promotions_.erase(promotions_.begin());
      SchedJob& job = jobs_.at(id);
      TakeFromQueue(job);
      policy_.sort->Promote(job, now);
      job.last_run_s = 0;  // promoted once per wait
      PutInQueue(job);
    }
  }

  // ---- resources ----

  // What the job's tasks hold, counted against its tenant's quota as one running job.
  TenantUsage UsageOfJob(const SchedJob& job) const { return UsageOfTasks(job.placed); }
  TenantUsage UsageOfTasks(const std::vector<NodeTask>& tasks) const {
    TenantUsage u;
    for (const NodeTask& t : tasks) {
      if (t.node < 0 || t.node >= static_cast<int>(pool_.nodes().size())) continue;
      u += UsageOf({.cpu_millis = t.alloc.cpu_millis,
                    .memory_bytes = t.alloc.memory_bytes,
                    .gpus = t.alloc.gpus},
                   *pool_.nodes()[t.node].cap);
    }
    u.running_jobs = 1;
    return u;
  }

  void Account(const SchedJob& job, int sign) {
    TenantUsage u = UsageOfJob(job);
    TenantUsage& total = usage_[job.req.tenant_id];
    total.gpus += sign * u.gpus;
    total.cpu_millis += sign * u.cpu_millis;
    total.memory_bytes += sign * u.memory_bytes;
    total.running_jobs += sign;
    for (const auto& [type, n] : u.gpus_by_type) total.gpus_by_type[type] += sign * n;
    IndexPreemptible(job, sign > 0);
  }

  // Puts a running job in PreemptibleByGpus (or takes it out), keyed by LostSince: a job whose
  // LostSince changes is taken out before and put back after.
  void IndexPreemptible(const SchedJob& job, bool in) {
    if (!policy_.preempt || !job.req.preemptible) return;
    ByLostSince& same = PreemptibleByGpus()[std::max(1, job.gpus)];
    std::tuple<double, int64_t, const SchedJob*> key{-job.LostSince(), job.req.id, &job};
    if (in) {
      same.insert(key);
    } else {
      same.erase(key);
    }
  }

  // Preemptible jobs running or stopping, by their GPUs (at least 1), the least work to lose
  // first (the latest LostSince); kept when the policy preempts.
  using ByLostSince = std::set<std::tuple<double, int64_t, const SchedJob*>>;  // (-since, id, job)
  std::map<int, ByLostSince>& PreemptibleByGpus() {
    if (preemptible_.stale) {  // a copy of the scheduler: its own jobs
      preemptible_ = {};
      for (const auto& [id, job] : jobs_) {
        if (job.phase != SchedJob::Phase::kQueued) IndexPreemptible(job, true);
      }
    }
    return preemptible_.by_gpus;
  }

  void Free(SchedJob& job) {
    Account(job, -1);
    for (const NodeTask& t : job.placed) pool_.Release(t.node, t.alloc);
    job.placed.clear();
  }

  // Why the job does not fit (explain only). Jobs asking alike in one cycle get one answer while
  // nothing started or stopped.
  std::string Shortfall(Cycle& c, const SchedJob& job) const {
    if (c.shortfall_at != pool_.changes()) {
      c.shortfalls.clear();
      c.shortfall_at = pool_.changes();
    }
    for (const auto& [tasks, text] : c.shortfalls) {
      if (tasks == job.req.tasks) return text;
    }
    std::string text = Shortfall(job);
    if (c.shortfalls.size() < 16) c.shortfalls.push_back({job.req.tasks, text});
    return text;
  }
  std::string Shortfall(const SchedJob& job) const {
    // Against the node with the most free GPUs (the only node on one machine).
    const std::vector<NodeState>& nodes = pool_.nodes();
    if (nodes.empty()) return "no nodes";
    int best = 0;
    for (const NodeClass& klass : pool_.classes()) {
      if (!klass.by_free.empty() && klass.by_free.rbegin()->first > nodes[best].free_gpus) {
        best = klass.by_free.rbegin()->second;
      }
    }
    const NodeState& n = nodes[best];
    NodeCapacity free{.cpu_millis = n.free_cpu, .memory_bytes = n.free_memory};
    for (size_t p = 0; p < n.cap->gpus.size(); ++p) {
      if (n.slot_free[p]) free.gpus.push_back(n.cap->gpus[p]);
    }
    std::string s = GangShortfall(job.req.tasks, free);
    if (nodes.size() > 1) {
      absl::StrAppend(&s, " on the node with the most free GPUs (", pool_.free_gpus(),
                      " free in the cluster)");
    }
    return s;
  }

  // ---- the cycle ----

  std::optional<double> UsageHistorySpan() const override {
    if (policy_.history_half_life_s <= 0) return std::nullopt;
    return 10 * policy_.history_half_life_s;
  }

  // The history UpdateHistory would have kept had it seen these uses as they happened, cycle
  // by cycle (a tenant's share between two changes, decayed since): replayed change by change.
  void SetUsageHistory(const std::vector<PastUse>& past, double now) override {
    if (policy_.history_half_life_s <= 0) return;
    struct Change {
      double time;
      int64_t tenant;
      int sign;
      size_t usage;  // in usages
    };
    std::vector<TenantUsage> usages;
    std::vector<Change> changes;
    for (const PastUse& p : past) {
      double start = std::min(p.start_s, now), end = std::min(p.end_s, now);
      if (!(end > start)) continue;
      usages.push_back(UsageOfTasks(p.tasks));
      changes.push_back({start, p.tenant_id, +1, usages.size() - 1});
      changes.push_back({end, p.tenant_id, -1, usages.size() - 1});
    }
    std::sort(changes.begin(), changes.end(),
              [](const Change& a, const Change& b) { return a.time < b.time; });
    history_.clear();
    history_time_ = now;
    std::map<int64_t, TenantUsage> held;
    auto weight_until = [&](double t) {
      return std::exp2(-(now - t) / policy_.history_half_life_s);
    };
    double since = changes.empty() ? now : changes.front().time;
    for (const Change& c : changes) {
      if (c.time > since) {
        double w = weight_until(c.time) - weight_until(since);
        for (const auto& [tenant, u] : held) history_[tenant] += w * ShareOf(tenant, u);
        since = c.time;
      }
      TenantUsage& u = held[c.tenant];
      u.gpus += c.sign * usages[c.usage].gpus;
      u.cpu_millis += c.sign * usages[c.usage].cpu_millis;
      u.memory_bytes += c.sign * usages[c.usage].memory_bytes;
    }
  }

  void UpdateHistory(double now) {
    if (policy_.history_half_life_s <= 0) return;
    double dt = now - history_time_;
    history_time_ = now;
    if (dt <= 0) return;
    double keep = std::exp2(-dt / policy_.history_half_life_s);
    for (auto& [tenant, avg] : history_) avg *= keep;
    for (const auto& [tenant, u] : usage_) history_[tenant] += (1 - keep) * TenantShare(tenant);
  }

  // The weighted max-min fair split of the cluster's GPUs over the tenants' demands.
  void ComputeEntitlements() {
    entitlement_.clear();
    std::map<int64_t, double> demand;
    for (const auto& [tenant, u] : usage_) {
      if (u.gpus > 0) demand[tenant] += u.gpus;
    }
    for (const auto& [tenant, g] : queued_gpus_) {
      if (g > 0) demand[tenant] += g;
    }
    double left = total_gpus_;
    while (!demand.empty() && left > 1e-9) {
      double weights = 0;
      for (const auto& [tenant, d] : demand) weights += TenantWeight(tenant);
      double per_weight = left / weights;
      bool capped = false;
      for (auto it = demand.begin(); it != demand.end();) {
        double fair = per_weight * TenantWeight(it->first);
        if (it->second <= fair) {
          entitlement_[it->first] += it->second;
          left -= it->second;
          it = demand.erase(it);
          capped = true;
        } else {
          ++it;
        }
      }
      if (!capped) {
        for (const auto& [tenant, d] : demand) {
          entitlement_[tenant] += per_weight * TenantWeight(tenant);
        }
        break;
      }
    }
  }

  void Wait(Cycle& c, const SchedJob& job, std::string reason) {
    if (c.explain) c.result.wait.push_back({job.req.id, std::move(reason)});
  }

  // Whether the single-task job asks for at least as much as a request remembered under `key`.
  static bool Dominated(const std::map<std::string, std::vector<Resources>>& failed,
                        const std::string& key, const SchedJob& job) {
    auto it = failed.find(key);
    if (it == failed.end()) return false;
    const Resources& r = job.req.tasks[0];
    return std::any_of(it->second.begin(), it->second.end(), [&](const Resources& f) {
      return r.gpus >= f.gpus && r.cpu_millis >= f.cpu_millis && r.memory_bytes >= f.memory_bytes;
    });
  }

  bool KnownToFail(const Cycle& c, const SchedJob& job) const {
    return job.req.tasks.size() == 1 && Dominated(c.failed, job.req.tasks[0].gpu_type, job);
  }
  // Along the queue order claims only weaken, except between tenants when they take turns.
  std::string PreemptMemoKey(const SchedJob& job) const {
    const std::string& type = job.req.tasks[0].gpu_type;
    return policy_.sort->ByTenant() ? absl::StrCat(type, "\n", job.req.tenant_id) : type;
  }
  bool KnownNotToPreempt(const Cycle& c, const SchedJob& job) const {
    return job.req.tasks.size() == 1 && Dominated(c.cannot_preempt, PreemptMemoKey(job), job);
  }

  void RememberFailure(Cycle& c, const SchedJob& job) {
    if (job.req.tasks.size() != 1) return;
    auto& list = c.failed[job.req.tasks[0].gpu_type];
    if (list.size() < 8) list.push_back(job.req.tasks[0]);
  }

  // GPU types whose quota the tenant has used up are not offered.
  SlotFilter QuotaTypes(const SchedJob& job) const {
    const TenantQuota* q = Quota(job.req.tenant_id);
    if (q == nullptr || q->gpus_by_type.empty()) return nullptr;
    const TenantUsage* used = &Usage(job.req.tenant_id);
    return [q, used](const GpuSlot& s) {
      auto limit = GpuTypeLimit(*q, s.type);
      return !limit || GpusOfType(*used, s.type) < *limit;
    };
  }

  void Start(Cycle& c, SchedJob& job, std::vector<NodeTask> placed, double now) {
    TakeFromQueue(job);
    Unhold(job);  // it fit elsewhere before its victims stopped
    nominated_.erase(job.req.id);
    job.phase = SchedJob::Phase::kRunning;
    job.start_s = now;
    job.placed = std::move(placed);
    job.waiting_for.clear();
    Account(job, +1);
    c.started.insert(job.req.id);
    c.result.start.push_back({job.req.id, job.placed});
  }

  void Undo(std::vector<NodeTask>& placed) {
    for (const NodeTask& t : placed) pool_.Release(t.node, t.alloc);
  }

  std::string ReservationText(const Reservation& r, double now) const {
    if (!std::isfinite(r.start_s)) return absl::StrCat("job ", r.job_id);
    return absl::StrCat("job ", r.job_id, ", reserved to start in ",
                        static_cast<int64_t>(std::ceil(r.start_s - now)), " s");
  }

  // Whether a job that fits now may start ahead of the reservation: it ends before the
  // reserved start (by its estimate), or keeps off the reserved nodes.
  bool BackfillAllowed(const Reservation& r, const SchedJob& job,
                       const std::vector<NodeTask>& placed, double now) const {
    if (now + RuntimeEstimate(job) <= r.start_s) return true;
    return std::none_of(placed.begin(), placed.end(),
                        [&](const NodeTask& t) { return r.nodes.contains(t.node); });
  }

  // When a running job should end: at its max_runtime, else by its estimate; one that ran past
  // its estimate is expected to run as long again (run times are heavy-tailed).
  double EstimatedEnd(const SchedJob& j, double now) const {
    double end = j.start_s + RuntimeEstimate(j);
    if (end > now || j.req.max_runtime_s > 0) return std::max(now, end);
    return now + std::max(0.0, now - j.start_s);
  }

  // When and where the job could start if running jobs end as estimated and nothing else
  // starts: the reservation that backfill protects.
  Reservation Reserve(const SchedJob& job, double now) const {
    Reservation r{.job_id = job.req.id};
    std::vector<std::pair<double, const SchedJob*>> ends;
    for (const auto& [id, j] : jobs_) {
      if (j.phase != SchedJob::Phase::kQueued) ends.push_back({EstimatedEnd(j, now), &j});
    }
    std::sort(ends.begin(), ends.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second->req.id < b.second->req.id;
    });
    // A release can only make the job fit if it leaves its node with at least the GPUs of the
    // job's smallest task (the job did not fit before it): other releases skip the placement.
    int least_gpus = std::numeric_limits<int>::max();
    for (const Resources& t : job.req.tasks) least_gpus = std::min(least_gpus, t.gpus);
    Pool future = pool_;  // releases applied to a copy
    for (const auto& [end, j] : ends) {
      bool may_fit = least_gpus == 0;
      for (const NodeTask& t : j->placed) {
        future.Release(t.node, t.alloc);
        may_fit = may_fit || future.nodes()[t.node].free_gpus >= least_gpus;
      }
      if (!may_fit) continue;
      auto placed = future.Place(job.req.tasks, nullptr);
      if (placed) {
        r.start_s = end;
        for (const NodeTask& t : *placed) r.nodes.insert(t.node);
        return r;
      }
    }
    return r;
  }

  // Jobs that may be preempted at all (preemptible, past the minimum run time), cheapest first:
  // the cost is the work lost, GPU-seconds since their attempt started or their checkpoint since
  // (LostSince). Once per cycle, merged from `preemptible_`, where jobs of as many GPUs are
  // already in this order.
  const std::vector<std::pair<double, const SchedJob*>>& Preemptible(Cycle& c, double now) {
    if (c.preemptible) return *c.preemptible;
    c.preemptible.emplace();
    auto cheaper = [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second->req.id < b.second->req.id;
    };
    std::vector<std::pair<double, const SchedJob*>>& out = *c.preemptible;
    for (const auto& [gpus, same] : PreemptibleByGpus()) {
      size_t merged = out.size();
      for (const auto& [neg_start, id, v] : same) {
        // A job that started at this instant is never a victim, so that preemption at one
        // instant ends (every victim started earlier, and each can be stopped only once).
        if (v->phase == SchedJob::Phase::kRunning && v->start_s < now &&
            now - v->start_s >= policy_.min_runtime_s && !c.started.contains(id)) {
          out.push_back({(now - v->LostSince()) * gpus, v});
        }
      }
      std::inplace_merge(out.begin(), out.begin() + merged, out.end(), cheaper);
    }
    return *c.preemptible;
  }

  // Frees what `v` holds on `node` in the trial state of that node.
  static void ReleaseOn(NodeState& trial, int node, const SchedJob& v) {
    for (const NodeTask& t : v.placed) {
      if (t.node != node) continue;
      trial.free_cpu += t.alloc.cpu_millis;
      trial.free_memory += t.alloc.memory_bytes;
      for (int index : t.alloc.gpus) {
        for (size_t p = 0; p < trial.cap->gpus.size(); ++p) {
          if (trial.cap->gpus[p].index == index && !trial.slot_free[p]) {
            trial.slot_free[p] = 1;
            ++trial.free_gpus;
          }
        }
      }
    }
  }

  // Running jobs whose preemption lets the job fit, taken cheapest first (the least work lost):
  // the first node where the task fits once the victims there are gone wins. Empty when none
  // will do.
  std::vector<int64_t> ChooseVictims(Cycle& c, const SchedJob& job, double now,
                                     std::vector<int>* nodes) {  // the node of each task
    const auto& candidates = Preemptible(c, now);
    if (candidates.empty()) return {};
    Pool future = job.req.tasks.size() > 1 ? pool_ : Pool();  // gangs: tasks placed in turn
    const Pool& base = job.req.tasks.size() > 1 ? future : pool_;
    std::set<int64_t> chosen;
    // MayPreempt's answer for each candidate (2: not asked yet), kept for the cycle when the
    // plugin says it holds for other preemptors too.
    std::vector<char> own;
    std::vector<char>& eligible = [&]() -> std::vector<char>& {
      auto key = policy_.preempt->PreemptorKey(job, *this);
      return key ? c.eligible[*key] : own;
    }();
    if (eligible.empty()) eligible.assign(candidates.size(), 2);
    for (size_t ti = 0; ti < job.req.tasks.size(); ++ti) {
      const Resources& task = job.req.tasks[ti];
      if (job.req.tasks.size() > 1) {  // a task of a gang may fit as things are
        if (int node = future.FindNode(task, nullptr); node >= 0) {
          future.Take(node, task, nullptr);
          nodes->push_back(node);
          continue;
        }
      }
      std::unordered_map<int, std::pair<NodeState, std::vector<const SchedJob*>>> trials;
      int found = -1;
      for (size_t i = 0; i < candidates.size() && found < 0; ++i) {
        if (!eligible[i]) continue;
        const SchedJob& v = *candidates[i].second;
        // Victims of earlier preemptions this cycle are already stopping.
        if (v.phase != SchedJob::Phase::kRunning || chosen.contains(v.req.id)) continue;
        if (eligible[i] == 2) eligible[i] = policy_.preempt->MayPreempt(job, v, *this) ? 1 : 0;
        if (!eligible[i]) continue;
        for (const NodeTask& t : v.placed) {
          const NodeState& n = base.nodes()[t.node];
          const NodeClass& klass = pool_.classes()[n.klass];
          if (task.gpus > 0 && klass.uniform && !Pool::TypeOk(klass.rep, task.gpu_type)) continue;
          auto [it, added] = trials.try_emplace(t.node, n, std::vector<const SchedJob*>{});
          ReleaseOn(it->second.first, t.node, v);
          it->second.second.push_back(&v);
          if (pool_.NodeFits(it->second.first, task, nullptr)) {
            found = t.node;
            break;
          }
        }
      }
      if (found < 0) {
        if (job.req.tasks.size() == 1 && policy_.move_to_make_room) {
          return ChooseMoves(job, candidates, eligible, nodes);
        }
        return {};
      }
      nodes->push_back(found);
      for (const SchedJob* v : trials.at(found).second) {
        chosen.insert(v->req.id);
        if (job.req.tasks.size() > 1) {
          for (const NodeTask& t : v->placed) future.Release(t.node, t.alloc);
        }
      }
      if (job.req.tasks.size() > 1) future.Take(found, task, nullptr);
    }
    return {chosen.begin(), chosen.end()};
  }

  // Policy::move_to_make_room, for a job of one task of a tenant below its entitlement that
  // found no victims: a node is cleared of jobs the Preempt plugin allows (`eligible`, as
  // ChooseVictims left it) and of jobs that can start again at once on another node, in room
  // free now or made by preempting there a job the plugin allows. Nodes are tried in the order
  // of their cheapest candidate, each victim's lost work; the first that clears wins.
  std::vector<int64_t> ChooseMoves(
      const SchedJob& job, const std::vector<std::pair<double, const SchedJob*>>& candidates,
      std::vector<char>& eligible, std::vector<int>* nodes) {
    int64_t tenant = job.req.tenant_id;
    if (TenantGpus(tenant) + 1e-9 >= TenantEntitlement(tenant)) return {};
    const Resources& task = job.req.tasks[0];
    auto allows = [&](size_t i) {
      if (eligible[i] == 2) {
        eligible[i] = policy_.preempt->MayPreempt(job, *candidates[i].second, *this) ? 1 : 0;
      }
      return eligible[i] == 1;
    };
    std::vector<int> order;  // nodes, by their cheapest candidate
    std::unordered_map<int, std::vector<size_t>> on_node;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const SchedJob& v = *candidates[i].second;
      if (v.phase != SchedJob::Phase::kRunning) continue;
      for (const NodeTask& t : v.placed) {
        auto& list = on_node[t.node];
        if (list.empty()) order.push_back(t.node);
        list.push_back(i);
      }
    }
    Pool elsewhere = pool_;  // with the moved victims placed
    // Undo log of one node's try: (node, allocation, true when taken in `elsewhere`).
    std::vector<std::tuple<int, TaskAllocation, bool>> log;
    int budget = 4096;  // candidates looked at as room for a move, over all nodes
    for (int node : order) {
      if (budget <= 0) break;
      const NodeState& n = pool_.nodes()[node];
      const NodeClass& klass = pool_.classes()[n.klass];
      if (task.gpus > 0 && klass.uniform && !Pool::TypeOk(klass.rep, task.gpu_type)) continue;
      NodeState trial = n;
      std::vector<int64_t> victims;
      std::set<int64_t> used;  // victims, and jobs preempted for a move's room
      log.clear();
      for (size_t i : on_node[node]) {
        const SchedJob& v = *candidates[i].second;
        if (used.contains(v.req.id)) continue;
        bool go = allows(i);
        if (!go && v.req.tasks.size() == 1 && v.placed.size() == 1 &&
            v.req.priority <= job.req.priority) {
          const Resources& need = v.req.tasks[0];
          SlotFilter types = QuotaTypes(v);
          if (int to = elsewhere.FindNode(need, types, node); to >= 0) {
            log.emplace_back(to, elsewhere.Take(to, need, types), true);
            go = true;
          } else {
            for (size_t j = 0; j < candidates.size() && budget > 0 && !go; ++j) {
              const SchedJob& w = *candidates[j].second;
              if (w.phase != SchedJob::Phase::kRunning || w.placed.size() != 1 ||
                  w.placed[0].node == node || used.contains(w.req.id)) {
                continue;
              }
              --budget;
              if (!allows(j)) continue;
              int at = w.placed[0].node;
              NodeState room = elsewhere.nodes()[at];
              ReleaseOn(room, at, w);
              if (!elsewhere.NodeFits(room, need, types)) continue;
              elsewhere.Release(at, w.placed[0].alloc);
              log.emplace_back(at, w.placed[0].alloc, false);
              log.emplace_back(at, elsewhere.Take(at, need, types), true);
              used.insert(w.req.id);
              victims.push_back(w.req.id);
              go = true;
            }
          }
        }
        if (!go) continue;
        used.insert(v.req.id);
        victims.push_back(v.req.id);
        ReleaseOn(trial, node, v);
        if (pool_.NodeFits(trial, task, nullptr)) {
          nodes->push_back(node);
          return victims;
        }
      }
      for (auto it = log.rbegin(); it != log.rend(); ++it) {  // this node will not do
        auto& [at, alloc, taken] = *it;
        if (taken) {
          elsewhere.Release(at, alloc);
        } else {
          elsewhere.Hold(at, alloc);
        }
      }
    }
    return {};
  }

  // What is free now of what the job's tasks need on the nodes it preempted for is held for it
  // until its victims have stopped, so that no job behind it takes that room meanwhile.
  void Hold(SchedJob& job, const std::vector<int>& nodes) {
    for (size_t i = 0; i < nodes.size() && i < job.req.tasks.size(); ++i) {
      const Resources& need = job.req.tasks[i];
      const NodeState& n = pool_.nodes()[nodes[i]];
      Resources part{
          .cpu_millis = std::min(need.cpu_millis, std::max<int64_t>(0, n.free_cpu)),
          .memory_bytes = std::min(need.memory_bytes, std::max<int64_t>(0, n.free_memory)),
          .gpus = std::min(need.gpus, pool_.UsableGpus(n, need, nullptr)),
          .gpu_type = need.gpu_type};
      job.held.push_back({nodes[i], pool_.Take(nodes[i], part, nullptr)});
    }
  }

  void Unhold(SchedJob& job) {
    for (const NodeTask& t : job.held) pool_.Release(t.node, t.alloc);
    job.held.clear();
  }

  // No free GPU, no job that needs none, and no preemption left to try: the rest of the queue
  // cannot start this cycle.
  bool NothingCanStart(const Cycle& c) const {
    return pool_.free_gpus() == 0 && queued_without_gpus_ == 0 &&
           (!policy_.preempt || c.preemptions_left <= 0);
  }

  // A job whose victims have all stopped takes the room they made before anyone else does (if
  // it still fits: then it has lost its claim and waits in its place in the queue).
  void StartNominated(Cycle& c, double now) {
    for (auto it = nominated_.begin(); it != nominated_.end();) {
      auto j = jobs_.find(*it);
      if (j == jobs_.end() || j->second.phase != SchedJob::Phase::kQueued) {
        it = nominated_.erase(it);
        continue;
      }
      SchedJob& job = j->second;
      bool stopping = std::any_of(job.waiting_for.begin(), job.waiting_for.end(), [&](int64_t v) {
        auto victim = jobs_.find(v);
        return victim != jobs_.end() && victim->second.phase == SchedJob::Phase::kEvicting;
      });
      if (stopping) {
        ++it;
        continue;
      }
      it = nominated_.erase(it);
      job.waiting_for.clear();
      Unhold(job);
      bool allowed = std::all_of(policy_.filters.begin(), policy_.filters.end(),
                                 [&](const auto& f) { return f->Filter(job, *this).empty(); });
      if (!allowed) continue;
      if (auto placed = pool_.Place(job.req.tasks, QuotaTypes(job))) {
        Start(c, job, *std::move(placed), now);
      }
    }
  }

  void NotFit(Cycle& c, SchedJob& job, double now) {
    std::string reason = c.explain
                             ? absl::StrCat("waiting for resources: needs ", Shortfall(c, job))
                             : std::string();
    if (policy_.preempt && c.preemptions_left > 0 && !KnownNotToPreempt(c, job)) {
      std::vector<int> nodes;
      std::vector<int64_t> victims = ChooseVictims(c, job, now, &nodes);
      if (victims.empty() && job.req.tasks.size() == 1) {
        // Jobs behind it have no stronger claim: one that needs as much will not find room.
        c.cannot_preempt[PreemptMemoKey(job)].push_back(job.req.tasks[0]);
      }
      if (!victims.empty()) {
        --c.preemptions_left;
        for (int64_t id : victims) {
          SchedJob& v = jobs_.at(id);
          std::string why = policy_.preempt->MayPreempt(job, v, *this)
                                ? policy_.preempt->Why(job, v, *this)
                                : "moved: it can start again at once on another node";
          c.result.preempt.push_back(
              {id, job.req.id, absl::StrCat("preempted for job ", job.req.id, " (", why, ")")});
        }
        for (int64_t id : victims) jobs_.at(id).phase = SchedJob::Phase::kEvicting;
        job.waiting_for = victims;
        Hold(job, nodes);
        nominated_.insert(job.req.id);
        if (c.explain) {
          reason = absl::StrCat("preempting job", victims.size() > 1 ? "s " : " ",
                                absl::StrJoin(victims, ", "), " to make room");
        }
      }
    }
    Blocked(c, job, now);
    Wait(c, job, std::move(reason));
  }

  // What a job that cannot start means for the jobs behind it.
  void Blocked(Cycle& c, const SchedJob& job, double now) {
    switch (policy_.reserve) {
      case ReserveMode::kStrict:
        c.strict_blocker = job.req.id;
        break;
      case ReserveMode::kBackfill:
        if (!c.reservation) c.reservation = Reserve(job, now);
        break;
      case ReserveMode::kNone:
        if (policy_.reserve_below_share && !c.reservation && job.waiting_for.empty() &&
            TenantGpus(job.req.tenant_id) + 1e-9 < TenantEntitlement(job.req.tenant_id)) {
          c.reservation = Reserve(job, now);
        }
        break;
    }
  }

  // Considers one queued job; true when it started.
  bool Consider(Cycle& c, SchedJob& job, double now) {
    if (c.explain) c.order.push_back(job.req.id);
    if (c.strict_blocker != 0) {
      // Its tenant may not see the blocker, so the reason says why it cannot look it up.
      bool other = jobs_.at(c.strict_blocker).req.tenant_id != job.req.tenant_id;
      Wait(c, job,
           absl::StrCat("waiting behind job ", c.strict_blocker, other ? " of another tenant" : "",
                        " (FIFO order)"));
      return false;
    }
    int64_t tenant = job.req.tenant_id;
    if (auto b = c.tenant_blocked.find(tenant); b != c.tenant_blocked.end()) {
      Wait(c, job, b->second);
      return false;
    }
    for (const auto& filter : policy_.filters) {
      if (std::string why = filter->Filter(job, *this); !why.empty()) {
        c.tenant_blocked[tenant] =
            absl::StrCat("tenant quota: waiting behind job ", job.req.id, " of the same tenant");
        Wait(c, job, std::move(why));
        return false;
      }
    }
    if (!job.waiting_for.empty()) {
      std::vector<int64_t> still;
      for (int64_t id : job.waiting_for) {
        auto v = jobs_.find(id);
        if (v != jobs_.end() && v->second.phase == SchedJob::Phase::kEvicting) still.push_back(id);
      }
      job.waiting_for = still;
    }
    std::optional<std::vector<NodeTask>> placed;
    if (!KnownToFail(c, job)) placed = pool_.Place(job.req.tasks, QuotaTypes(job));
    if (!placed) {
      if (!job.waiting_for.empty()) {
        Blocked(c, job, now);
        Wait(c, job,
             absl::StrCat("waiting for preempted job", job.waiting_for.size() > 1 ? "s " : " ",
                          absl::StrJoin(job.waiting_for, ", "), " to stop"));
        return false;
      }
      if (SlotFilter types = QuotaTypes(job); types) {
        if (auto any = pool_.Place(job.req.tasks, nullptr)) {
          Undo(*any);
          c.tenant_blocked[tenant] =
              absl::StrCat("tenant quota: waiting behind job ", job.req.id, " of the same tenant");
          Wait(c, job, "tenant quota: the free GPUs that fit are of types whose quota is used up");
          return false;
        }
      }
      RememberFailure(c, job);
      NotFit(c, job, now);
      return false;
    }
    if (const TenantQuota* q = Quota(tenant); q != nullptr && !q->gpus_by_type.empty()) {
      SchedJob trial = job;
      trial.placed = *placed;
      std::string over =
          QuotaShortfall(*q, Usage(tenant), {.gpus_by_type = UsageOfJob(trial).gpus_by_type});
      if (!over.empty()) {
        Undo(*placed);
        c.tenant_blocked[tenant] =
            absl::StrCat("tenant quota: waiting behind job ", job.req.id, " of the same tenant");
        Wait(c, job, absl::StrCat("tenant quota: ", over));
        return false;
      }
    }
    if (c.reservation && !BackfillAllowed(*c.reservation, job, *placed, now)) {
      Undo(*placed);
      Wait(c, job,
           absl::StrCat(policy_.reserve == ReserveMode::kBackfill
                            ? "backfill: would delay "
                            : "fair share: nodes are being drained for below-share ",
                        ReservationText(*c.reservation, now)));
      return false;
    }
    Start(c, job, *std::move(placed), now);
    return true;
  }

  Policy policy_;
  Pool pool_;
  std::vector<int64_t> order_;  // jobs considered in the last explained cycle
  int total_gpus_ = 0;
  int64_t total_cpu_ = 0;
  int64_t total_memory_ = 0;
  double now_ = 0;

  std::unordered_map<int64_t, SchedJob> jobs_;
  std::unordered_map<int64_t, SortKey> keys_;    // of queued jobs
  std::map<int64_t, std::set<SortKey>> queues_;  // by tenant when the sort is by tenant, else 0
  size_t queued_count_ = 0;
  size_t queued_without_gpus_ = 0;
  std::set<std::pair<double, int64_t>> promotions_;  // (when, job) of starvation promotions
  std::set<int64_t> nominated_;  // queued jobs that preempted others and wait for the room
  // PreemptibleByGpus. It points into jobs_, so a copy starts stale and is built again from
  // the copy's own jobs when first used.
  struct PreemptibleIndex {
    std::map<int, ByLostSince> by_gpus;
    bool stale = false;
    PreemptibleIndex() = default;
    PreemptibleIndex(const PreemptibleIndex&) : stale(true) {}
    PreemptibleIndex& operator=(const PreemptibleIndex&) {
      by_gpus.clear();
      stale = true;
      return *this;
    }
    PreemptibleIndex& operator=(PreemptibleIndex&&) = default;
  } preemptible_;

  std::map<int64_t, TenantQuota> quotas_;
  std::map<int64_t, double> weights_;
  std::map<int64_t, TenantUsage> usage_;
  std::map<int64_t, int> queued_gpus_;
  std::map<int64_t, double> history_;
  double history_time_ = 0;
  std::map<int64_t, double> entitlement_;
  std::map<int64_t, RuntimeStats> runtimes_;
  RuntimeStats all_runtimes_;
  std::map<std::pair<int64_t, int>, ServiceSizes> sizes_;  // by (tenant, GPUs)
  ServiceSizes all_sizes_;
  size_t rekeyed_at_ = 0;  // all_sizes_.count() when queued jobs were last keyed again
  struct Neighbours {
    std::vector<int64_t> before;  // the jobs it is linked to, the latest first
    std::vector<int64_t> after;   // the jobs linked to it
    double ended_gpu_s = -1;      // its size, once it ended
    double near_gpu_s = -1;       // NearSize(before), kept as those end
    bool live = true;             // queued or running
    bool latest = true;           // among its class's latest: later jobs link to it
  };
  std::unordered_map<int64_t, Neighbours> neighbours_;
  std::map<std::pair<int64_t, int>, std::deque<int64_t>> latest_;  // by (tenant, GPUs)
};

CycleResult Impl::Schedule(double now, bool explain) {
  now_ = now;
  UpdateHistory(now);
  PromoteDue(now);
  RekeyForHistory();
  if (policy_.preempt || policy_.sort->ByTenant()) ComputeEntitlements();
  Cycle c{.explain = explain, .preemptions_left = policy_.max_preemptions_per_cycle};
  StartNominated(c, now);
  if (!policy_.sort->ByTenant()) {
    std::set<SortKey>& queue = queues_[0];
    for (auto it = queue.begin(); it != queue.end();) {
      if (!explain && (c.strict_blocker != 0 || NothingCanStart(c))) break;
      SchedJob& job = jobs_.at(it->id);
      auto next = std::next(it);
      Consider(c, job, now);  // a start erases `it` from the queue
      it = next;
    }
  } else {
    // Tenants take turns: the one with the lowest key (then the lowest id) offers its next job.
    // A tenant's key changes only when a job of its own starts, so only the tenant that offered
    // a job is keyed again.
    std::set<std::pair<double, int64_t>> turns;  // (key, tenant)
    std::unordered_map<int64_t, std::set<SortKey>::iterator> cursor;
    for (auto& [tenant, queue] : queues_) {
      if (queue.empty()) continue;
      cursor[tenant] = queue.begin();
      turns.insert({policy_.sort->TenantKey(tenant, *this), tenant});
    }
    while (!turns.empty()) {
      if (!explain && NothingCanStart(c)) break;
      auto [key, tenant] = *turns.begin();
      turns.erase(turns.begin());
      auto it = cursor.at(tenant);
      auto next = std::next(it);
      Consider(c, jobs_.at(it->id), now);  // a start erases `it` from the queue
      // Without explain a blocked tenant's later jobs need not be looked at.
      if (next == queues_[tenant].end() || (!explain && c.tenant_blocked.contains(tenant))) {
        continue;
      }
      cursor[tenant] = next;
      turns.insert({policy_.sort->TenantKey(tenant, *this), tenant});
    }
  }
  // The waiting reasons are in the order the jobs were considered: Consider gives each job at
  // most one, while it considers it.
  if (explain) order_ = std::move(c.order);
  return std::move(c.result);
}

std::optional<double> Impl::NextChange(double now) const {
  if (queued_count_ == 0) return std::nullopt;
  std::optional<double> next;
  auto consider = [&](double t) {
    if (t > now && (!next || t < *next)) next = t;
  };
  if (!promotions_.empty()) consider(promotions_.begin()->first);
  if (policy_.preempt) {
    for (const auto& [id, job] : jobs_) {
      if (job.phase != SchedJob::Phase::kRunning) continue;
      if (auto t = policy_.sort->ChangeAt(job, now)) consider(*t);
      if (job.start_s + policy_.min_runtime_s > now) consider(job.start_s + policy_.min_runtime_s);
    }
  }
  return next;
}

std::vector<QueueEntry> Impl::Queue(double now, double budget_s) const {
  Impl future(*this);
  CycleResult first = future.Schedule(now, /*explain=*/true);
  std::vector<QueueEntry> out;
  std::unordered_map<int64_t, size_t> index;
  std::unordered_map<int64_t, std::string> reasons;
  for (const WaitReason& w : first.wait) reasons[w.job_id] = w.reason;
  for (int64_t id : future.order_) {
    index[id] = out.size();
    QueueEntry e{.job_id = id, .tenant_id = jobs_.at(id).req.tenant_id};
    if (auto r = reasons.find(id); r != reasons.end()) {
      e.reason = r->second;
    } else {
      e.reason = "starting";
      e.estimated_start_s = now;
    }
    out.push_back(std::move(e));
  }
  // Forward: jobs being stopped (preempted now or before) leave at once, running jobs end as
  // their runtime is known or estimated, queued ones start; a cycle that preempts is followed
  // by one at the same time, in which its preemptors take the room. Between two ends, a cycle
  // also runs when the policy's view changes (NextChange: a running job passes its minimum run
  // time and may be preempted, a las threshold, a promotion).
  std::vector<int64_t> stopping;  // since before now; later, those each cycle preempts
  for (const auto& [id, j] : future.jobs_) {
    if (j.phase == SchedJob::Phase::kEvicting) stopping.push_back(id);
  }
  auto requeue = [&future](const std::vector<int64_t>& ids, double t) {
    for (int64_t id : ids) future.Requeue(id, t);
    return !ids.empty();
  };
  bool again = requeue(stopping, now);
  double t = now;
  size_t unknown = std::count_if(out.begin(), out.end(),
                                 [](const QueueEntry& e) { return !e.estimated_start_s; });
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(std::max(0.0, budget_s)));
  for (int step = 0; step < 1000 && unknown > 0; ++step) {
    if (std::chrono::steady_clock::now() > deadline) break;
    if (!again) {
      double end_t = kInf;
      int64_t ending = 0;
      for (const auto& [id, j] : future.jobs_) {
        if (j.phase == SchedJob::Phase::kQueued) continue;
        auto runtime = future.KnownRuntime(j);
        if (!runtime) continue;
        double end = std::max(now, j.start_s + *runtime);
        if (end < end_t || (end == end_t && id < ending)) {
          end_t = end;
          ending = id;
        }
      }
      std::optional<double> change = future.NextChange(t);
      if (change && *change < end_t) {
        t = *change;
      } else if (ending != 0) {
        t = end_t;
        future.Remove(ending, t, /*ended=*/true);
      } else {
        break;
      }
    }
    CycleResult r = future.Schedule(t, /*explain=*/false);
    for (const StartDecision& s : r.start) {
      if (auto i = index.find(s.job_id); i != index.end() && !out[i->second].estimated_start_s) {
        out[i->second].estimated_start_s = t;
        --unknown;
      }
    }
    stopping.clear();
    for (const PreemptDecision& p : r.preempt) stopping.push_back(p.job_id);
    again = requeue(stopping, t);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> NewScheduler(const SchedulerConfig& config,
                                                        std::vector<NodeCapacity> nodes) {
  auto policy = PluginRegistry::Default().Build(config.policy, config.params);
  if (!policy.ok()) return policy.status();
  return std::make_unique<Impl>(*std::move(policy), std::move(nodes));
}

std::vector<std::string> PolicyNames() { return PluginRegistry::Default().PolicyNames(); }

std::map<std::string, std::string> PolicyParams(const std::string& policy) {
  return PluginRegistry::Default().Defaults(policy);
}

absl::Status CheckCanEverRun(const std::vector<Resources>& tasks,
                             const std::vector<NodeCapacity>& nodes) {
  if (nodes.size() == 1) return CheckCanEverRun(tasks, nodes[0]);
  const NodeCapacity& largest = LargestNode(nodes);
  // Most jobs fit one node whole: no trial placement for them.
  if (CheckCanEverRun(tasks, largest).ok()) return absl::OkStatus();
  for (const Resources& task : tasks) {
    bool fits = false;
    for (const NodeCapacity& n : nodes) fits = fits || CheckCanEverRun({task}, n).ok();
    if (!fits) return CheckCanEverRun({task}, largest);
  }
  if (tasks.size() == 1) return absl::OkStatus();
  // The gang as a whole: placed by fifo on the empty cluster.
  absl::StatusOr<std::unique_ptr<Scheduler>> trial = NewScheduler({.policy = "fifo"}, nodes);
  if (!trial.ok()) return trial.status();
  (*trial)->Enqueue({.id = 1, .tasks = tasks}, 0);
  if (!(*trial)->Schedule(0, /*explain=*/false).start.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("tasks: the ", tasks.size(),
                                                 " tasks do not fit on the cluster's ",
                                                 nodes.size(), " nodes together"));
}

}  // namespace dlab
