#include "sched/plugins.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace dlab {

// ---- Params ----

namespace {

// 1000000 rather than StrCat's 1e+06.
std::string Trimmed(double v) { return absl::StrFormat("%.15g", v); }

// "300", "2.5", "5m", "1h30m" -> seconds.
std::optional<double> ParseSeconds(const std::string& text) {
  double v;
  if (absl::SimpleAtod(text, &v)) return v;
  absl::Duration d;
  if (absl::ParseDuration(text, &d)) return absl::ToDoubleSeconds(d);
  return std::nullopt;
}

constexpr NumberRange kSwitch{.max = 1, .whole = true};         // 0 off, 1 on
constexpr NumberRange kNeighbours{.max = 1000, .whole = true};  // gittins.neighbours

}  // namespace

double Params::Number(const std::string& key, double fallback, NumberRange range) {
  defaults_[key] = Trimmed(fallback);
  auto it = given_.find(key);
  if (it == given_.end()) return fallback;
  auto v = ParseSeconds(it->second);
  bool ok = v && std::isfinite(*v) && (range.above_min ? *v > range.min : *v >= range.min) &&
            *v <= range.max && (!range.whole || *v == std::floor(*v));
  if (ok) return *v;
  std::string want = range.whole ? "a whole number" : "a number";
  if (std::isfinite(range.max)) {
    absl::StrAppend(&want, range.above_min ? " above " : " from ", Trimmed(range.min),
                    range.above_min ? " and at most " : " to ", Trimmed(range.max));
  } else {
    absl::StrAppend(&want, range.above_min ? " above " : " of at least ", Trimmed(range.min));
  }
  if (range.duration) absl::StrAppend(&want, " (seconds, or a duration such as 5m)");
  errors_.push_back(absl::StrCat(key, ": '", it->second, "' must be ", want));
  return fallback;
}

std::vector<double> Params::Numbers(const std::string& key, std::vector<double> fallback) {
  defaults_[key] = absl::StrJoin(
      fallback, ",", [](std::string* out, double v) { absl::StrAppend(out, Trimmed(v)); });
  auto it = given_.find(key);
  if (it == given_.end()) return fallback;
  std::vector<double> out;
  for (absl::string_view part : absl::StrSplit(it->second, ',')) {
    auto v = ParseSeconds(std::string(absl::StripAsciiWhitespace(part)));
    if (!v || !std::isfinite(*v) || *v <= 0 || (!out.empty() && *v <= out.back())) {
      errors_.push_back(absl::StrCat(key, ": '", it->second,
                                     "' must be increasing positive numbers separated by commas"));
      return fallback;
    }
    out.push_back(*v);
  }
  return out;
}

std::string Params::Text(const std::string& key, const std::string& fallback) {
  defaults_[key] = fallback;
  auto it = given_.find(key);
  return it == given_.end() ? fallback : it->second;
}

absl::Status Params::Check() const {
  // A parameter read by two plugins is reported once.
  std::vector<std::string> errors;
  for (const std::string& e : errors_) {
    if (std::find(errors.begin(), errors.end(), e) == errors.end()) errors.push_back(e);
  }
  for (const auto& [key, value] : given_) {
    if (!defaults_.contains(key)) {
      std::vector<std::string> known;
      for (const auto& [k, v] : defaults_) known.push_back(k);
      errors.push_back(absl::StrCat("unknown parameter '", key, "' (this policy takes: ",
                                    known.empty() ? "none" : absl::StrJoin(known, ", "), ")"));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

// ---- Queue orders ----

namespace {

// Higher priority first, then earlier submission.
class PriorityFifoSort final : public QueueSortPlugin {
 public:
  SortKey Key(const SchedJob& job, const ClusterView&) const override {
    return {-static_cast<double>(job.req.priority), job.req.submit_s, 0, 0, job.req.id};
  }
};

// Orders by attained GPU-service (GPU-seconds), with thresholds at which a running job's
// standing is looked at again, and a promotion against starvation: a job that waited longer
// than `starvation` times its last run has its service forgiven (it counts from 0 again).
class ServiceSort : public QueueSortPlugin {
 public:
  ServiceSort(std::vector<double> thresholds, double starvation)
      : thresholds_(std::move(thresholds)), starvation_(starvation) {}

  std::optional<double> RekeyAt(const SchedJob& job) const override {
    if (starvation_ <= 0 || job.last_run_s <= 0 || Level(job, job.queued_since) == 0) {
      return std::nullopt;
    }
    return job.queued_since + starvation_ * job.last_run_s;
  }
  void Promote(SchedJob& job, double now) const override {
    job.service_offset = job.AttainedAt(now);
  }
  std::optional<double> ChangeAt(const SchedJob& job, double now) const override {
    double service = Service(job, now);
    for (double t : thresholds_) {
      if (service < t && job.gpus > 0) return now + (t - service) / job.gpus;
    }
    return std::nullopt;
  }
  // The number of thresholds the job's service has passed (las: its queue).
  double Level(const SchedJob& job, double now) const {
    double service = Service(job, now);
    int level = 0;
    while (level < static_cast<int>(thresholds_.size()) && service >= thresholds_[level]) ++level;
    return level;
  }
  static double Service(const SchedJob& job, double now) {
    return job.AttainedAt(now) - job.service_offset;
  }

 private:
  std::vector<double> thresholds_;
  double starvation_;
};

// Tiresias' discretised least-attained-service: queues by attained GPU-service (the
// thresholds); jobs of a lower queue go first; within a queue fewer GPUs first, then the least
// attained service (a job preempted or promoted back into the queue), then FIFO.
class LasSort final : public ServiceSort {
 public:
  explicit LasSort(Params& p)
      : ServiceSort(p.Numbers("las.thresholds", {300, 3000, 30000, 300000}),
                    p.Number("las.starvation", 100)) {}

  SortKey Key(const SchedJob& job, const ClusterView& view) const override {
    // Within a queue, fewer GPUs first (known at submission; such a job's service grows more
    // slowly), then less service attained (a queued job's does not change), then FIFO.
    return {-static_cast<double>(job.req.priority), Level(job, view.now()) * 1e6 + job.gpus,
            Service(job, view.now()), job.req.submit_s, job.req.id};
  }
};

// Tiresias' Gittins-index order (gittins.h): the highest Gittins index of the job's attained
// GPU-service first, over the sizes of the tenant's ended jobs with as many GPUs, else of all
// ended jobs, else (until `min_samples` jobs have ended) a log-uniform prior from a minute to
// about 30 GPU-years, under which the order is least attained service first. Then less
// service, then FIFO. Jobs without GPUs go first (they take none from the others). A running
// job's standing is looked at again when its service passes each threshold.
class GittinsSort final : public ServiceSort {
 public:
  explicit GittinsSort(Params& p)
      : ServiceSort(p.Numbers("gittins.thresholds", {300, 3000, 30000, 300000}),
                    p.Number("gittins.starvation", 100)),
        min_samples_(p.Number("gittins.min_samples", 20, {.whole = true})),
        neighbours_(p.Number("gittins.neighbours", 0, kNeighbours)),
        neighbour_weight_(p.Number("gittins.neighbour_weight", 0.5, {.max = 1})),
        neighbour_spread_(p.Number("gittins.neighbour_spread", 0.8, {.above_min = true})) {
    for (double x = 60; x < 1e9; x *= 2) prior_.Add(x);
    prior_.Index(0);  // builds its table now: later calls only read it
  }

  SortKey Key(const SchedJob& job, const ClusterView& view) const override {
    return {-static_cast<double>(job.req.priority), -Index(job, view), Service(job, view.now()),
            job.req.submit_s, job.req.id};
  }
  bool KeysFollowHistory() const override { return true; }
  double Index(const SchedJob& job, const ClusterView& view) const {
    if (job.gpus <= 0) return std::numeric_limits<double>::infinity();
    // The sizes read, and which they are: the tenant's with as many GPUs, everyone's (-1), the
    // prior (-2).
    std::pair<int64_t, int> which{job.req.tenant_id, job.gpus};
    const ServiceSizes* sizes = view.TenantSizes(job.req.tenant_id, job.gpus);
    if (sizes == nullptr || static_cast<double>(sizes->count()) < min_samples_) {
      sizes = &view.AllSizes();
      which = {0, -1};
    }
    if (static_cast<double>(sizes->count()) < min_samples_) {
      sizes = &prior_;
      which = {0, -2};
    }
    double service = Service(job, view.now());
    if (neighbours_ > 0 && neighbour_weight_ > 0) {
      if (std::optional<double> near = view.NeighbourSize(job)) {
        return GridDistribution::IndexAt(MixedTable(which, *sizes, *near), service);
      }
    }
    return sizes->Index(service);
  }

 private:
  // The index table of `sizes` mixed with a log-normal around the neighbours' size (weight
  // gittins.neighbour_weight, spread gittins.neighbour_spread), by the size's log rounded to a
  // twentieth; rebuilt as `sizes` grows by a tenth. Copies of a scheduler share the plugin,
  // hence the key names the sizes rather than pointing at them.
  const std::vector<double>& MixedTable(std::pair<int64_t, int> which, const ServiceSizes& sizes,
                                        double near) const {
    constexpr double kStep = 0.05;
    int bucket = static_cast<int>(std::lround(std::log(std::max(1.0, near)) / kStep));
    if (mixed_.size() > 4096) mixed_.clear();
    Mixed& m = mixed_[{which.first, which.second, bucket}];
    if (m.table.empty() || sizes.count() < m.count ||
        ServiceSizes::GrewByATenth(sizes.count(), m.count)) {
      m.count = sizes.count();
      m.table = GridDistribution::Mix(
                    sizes.AtGrid(),
                    GridDistribution::LogNormal(std::exp(bucket * kStep), neighbour_spread_),
                    neighbour_weight_)
                    .IndexTable();
    }
    return m.table;
  }
  struct Mixed {
    size_t count = 0;  // sizes.count() when built
    std::vector<double> table;
  };

  double min_samples_;
  double neighbours_, neighbour_weight_, neighbour_spread_;
  ServiceSizes prior_;
  mutable std::map<std::tuple<int64_t, int, int>, Mixed> mixed_;  // by (which, bucket)
};

// Shortest remaining (true) run time first; knows what no production scheduler knows.
class SrtfSort final : public QueueSortPlugin {
 public:
  SortKey Key(const SchedJob& job, const ClusterView& view) const override {
    return {-static_cast<double>(job.req.priority), job.RemainingAt(view.now()), job.req.submit_s,
            0, job.req.id};
  }
};

// Dominant resource fairness: the tenant with the smallest (weighted) dominant share, counting
// its decayed usage history, offers its next job; FIFO by priority within a tenant.
class DrfSort final : public QueueSortPlugin {
 public:
  SortKey Key(const SchedJob& job, const ClusterView&) const override {
    return {-static_cast<double>(job.req.priority), job.req.submit_s, 0, 0, job.req.id};
  }
  bool ByTenant() const override { return true; }
  double TenantKey(int64_t tenant, const ClusterView& view) const override {
    return view.TenantShare(tenant) + view.TenantHistory(tenant);
  }
};

// ---- Filters ----

// The tenant's quota: CPUs, memory, GPUs in total and running jobs (GPU types are checked when
// the job is placed: GPUs of a type whose quota is used up are not offered).
class QuotaFilter final : public FilterPlugin {
 public:
  std::string Filter(const SchedJob& job, const ClusterView& view) const override {
    const TenantQuota* q = view.Quota(job.req.tenant_id);
    if (q == nullptr) return "";
    TenantUsage want{.gpus = job.gpus, .running_jobs = 1};
    for (const Resources& r : job.req.tasks) {
      want.cpu_millis += r.cpu_millis;
      want.memory_bytes += r.memory_bytes;
    }
    std::string over = QuotaShortfall(*q, view.Usage(job.req.tenant_id), want);
    return over.empty() ? "" : absl::StrCat("tenant quota: ", over);
  }
};

// ---- Preemption ----

class PriorityPreempt final : public PreemptPlugin {
 public:
  bool MayPreempt(const SchedJob& p, const SchedJob& v, const ClusterView&) const override {
    return v.req.priority < p.req.priority;
  }
  std::string Why(const SchedJob& p, const SchedJob& v, const ClusterView&) const override {
    return absl::StrCat("priority ", p.req.priority, " > ", v.req.priority);
  }
  std::optional<std::pair<int, double>> PreemptorKey(const SchedJob& p,
                                                     const ClusterView&) const override {
    return std::pair<int, double>{p.req.priority, 0};
  }
};

class LasPreempt final : public PreemptPlugin {
 public:
  explicit LasPreempt(std::shared_ptr<const LasSort> sort) : sort_(std::move(sort)) {}
  bool MayPreempt(const SchedJob& p, const SchedJob& v, const ClusterView& view) const override {
    return v.req.priority <= p.req.priority &&
           (v.req.priority < p.req.priority ||
            sort_->Level(v, view.now()) > sort_->Level(p, view.now()));
  }
  std::string Why(const SchedJob& p, const SchedJob& v, const ClusterView& view) const override {
    return absl::StrCat("least attained service: queue ", sort_->Level(p, view.now()), " before ",
                        sort_->Level(v, view.now()));
  }
  std::optional<std::pair<int, double>> PreemptorKey(const SchedJob& p,
                                                     const ClusterView& view) const override {
    return std::pair<int, double>{p.req.priority, sort_->Level(p, view.now())};
  }

 private:
  std::shared_ptr<const LasSort> sort_;
};

class GittinsPreempt final : public PreemptPlugin {
 public:
  GittinsPreempt(Params& p, std::shared_ptr<const GittinsSort> sort)
      : sort_(std::move(sort)), ratio_(p.Number("gittins.preempt_ratio", 4, {.min = 1})) {}
  bool MayPreempt(const SchedJob& p, const SchedJob& v, const ClusterView& view) const override {
    if (v.req.priority > p.req.priority) return false;
    if (v.req.priority < p.req.priority) return true;
    return sort_->Index(v, view) * ratio_ < PreemptorIndex(p, view);
  }
  std::optional<std::pair<int, double>> PreemptorKey(const SchedJob& p,
                                                     const ClusterView& view) const override {
    return std::pair<int, double>{p.req.priority, PreemptorIndex(p, view)};
  }
  std::string Why(const SchedJob& p, const SchedJob& v, const ClusterView& view) const override {
    return absl::StrFormat("Gittins index %.3g > %.3g", sort_->Index(p, view),
                           sort_->Index(v, view));
  }

 private:
  // The preemptor's index, once for the many victims it is offered in one cycle.
  double PreemptorIndex(const SchedJob& p, const ClusterView& view) const {
    double service = ServiceSort::Service(p, view.now());
    size_t ended = view.AllSizes().count();
    if (memo_job_ != p.req.id || memo_now_ != view.now() || memo_service_ != service ||
        memo_ended_ != ended) {
      memo_job_ = p.req.id;
      memo_now_ = view.now();
      memo_service_ = service;
      memo_ended_ = ended;
      memo_index_ = sort_->Index(p, view);
    }
    return memo_index_;
  }

  std::shared_ptr<const GittinsSort> sort_;
  double ratio_;
  mutable int64_t memo_job_ = 0;
  mutable double memo_now_ = -1, memo_service_ = -1, memo_index_ = 0;
  mutable size_t memo_ended_ = 0;
};

class SrtfPreempt final : public PreemptPlugin {
 public:
  bool MayPreempt(const SchedJob& p, const SchedJob& v, const ClusterView& view) const override {
    return v.req.priority <= p.req.priority &&
           (v.req.priority < p.req.priority ||
            v.RemainingAt(view.now()) > p.RemainingAt(view.now()));
  }
  std::string Why(const SchedJob& p, const SchedJob& v, const ClusterView& view) const override {
    return absl::StrCat("shorter remaining time: ", p.RemainingAt(view.now()), " s < ",
                        v.RemainingAt(view.now()), " s");
  }
  std::optional<std::pair<int, double>> PreemptorKey(const SchedJob& p,
                                                     const ClusterView& view) const override {
    return std::pair<int, double>{p.req.priority, p.RemainingAt(view.now())};
  }
};

// A tenant below its entitlement may take GPUs from a tenant above its own, as long as the
// victim's tenant keeps at least as many (weighted) GPUs as the preemptor's tenant then has.
class FairSharePreempt final : public PreemptPlugin {
 public:
  bool MayPreempt(const SchedJob& p, const SchedJob& v, const ClusterView& view) const override {
    int64_t pt = p.req.tenant_id, vt = v.req.tenant_id;
    if (pt == vt) return false;
    double p_has = view.TenantGpus(pt), v_has = view.TenantGpus(vt);
    if (p_has >= view.TenantEntitlement(pt) || v_has <= view.TenantEntitlement(vt)) return false;
    return (v_has - v.gpus) / view.TenantWeight(vt) >= (p_has + p.gpus) / view.TenantWeight(pt);
  }
  std::string Why(const SchedJob& p, const SchedJob& v, const ClusterView& view) const override {
    int64_t pt = p.req.tenant_id, vt = v.req.tenant_id;
    return absl::StrCat("fair share: tenant ", pt, " holds ", view.TenantGpus(pt), " GPUs of its ",
                        absl::StrFormat("%.1f", view.TenantEntitlement(pt)), ", tenant ", vt,
                        " holds ", view.TenantGpus(vt), " of ",
                        absl::StrFormat("%.1f", view.TenantEntitlement(vt)));
  }
};

}  // namespace

// ---- Registry ----

absl::Status PluginRegistry::AddSort(const std::string& name, SortFactory f) {
  if (!sorts_.emplace(name, std::move(f)).second) {
    return absl::AlreadyExistsError(absl::StrCat("queue sort plugin '", name, "' is registered"));
  }
  return absl::OkStatus();
}

absl::Status PluginRegistry::AddPreempt(const std::string& name, PreemptFactory f) {
  if (!preempts_.emplace(name, std::move(f)).second) {
    return absl::AlreadyExistsError(absl::StrCat("preempt plugin '", name, "' is registered"));
  }
  return absl::OkStatus();
}

absl::Status PluginRegistry::AddFilter(const std::string& name, FilterFactory f) {
  if (!filters_.emplace(name, std::move(f)).second) {
    return absl::AlreadyExistsError(absl::StrCat("filter plugin '", name, "' is registered"));
  }
  return absl::OkStatus();
}

absl::Status PluginRegistry::AddPolicy(const std::string& name, PolicySpec spec) {
  if (!sorts_.contains(spec.sort) || (!spec.preempt.empty() && !preempts_.contains(spec.preempt))) {
    return absl::InvalidArgumentError(absl::StrCat("policy '", name, "' names unknown plugins"));
  }
  for (const std::string& f : spec.filters) {
    if (!filters_.contains(f)) {
      return absl::InvalidArgumentError(absl::StrCat("policy '", name, "': no filter '", f, "'"));
    }
  }
  if (!policies_.emplace(name, std::move(spec)).second) {
    return absl::AlreadyExistsError(absl::StrCat("policy '", name, "' is registered"));
  }
  return absl::OkStatus();
}

std::vector<std::string> PluginRegistry::PolicyNames() const {
  std::vector<std::string> out;
  for (const auto& [name, spec] : policies_) out.push_back(name);
  return out;
}

absl::StatusOr<Policy> PluginRegistry::Build(
    const std::string& name, const std::map<std::string, std::string>& given) const {
  auto it = policies_.find(name);
  if (it == policies_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown scheduling policy '", name,
                     "' (one of: ", absl::StrJoin(PolicyNames(), ", "), ")"));
  }
  const PolicySpec& spec = it->second;
  Params params(given);
  Policy p{.name = name, .reserve = spec.reserve};
  p.sort = sorts_.at(spec.sort)(params);
  for (const std::string& f : spec.filters) p.filters.push_back(filters_.at(f)(params));
  if (!spec.preempt.empty()) {
    p.preempt = preempts_.at(spec.preempt)(params);
    p.min_runtime_s =
        params.Number("preemption.min_runtime", spec.min_runtime_s, {.duration = true});
    p.max_preemptions_per_cycle = static_cast<int>(params.Number(
        "preemption.max_per_cycle", p.max_preemptions_per_cycle, {.max = 1e6, .whole = true}));
  }
  p.score = params.Text("score", "pack") == "spread" ? ScoreMode::kSpread : ScoreMode::kPack;
  if (std::string s = params.Text("score", "pack"); s != "pack" && s != "spread") {
    return absl::InvalidArgumentError(absl::StrCat("score: '", s, "' is not one of pack, spread"));
  }
  if (spec.reserve == ReserveMode::kBackfill) {
    p.default_runtime_s = params.Number("backfill.default_runtime", p.default_runtime_s,
                                        {.above_min = true, .duration = true});
  }
  if (spec.sort == "gittins") {
    p.neighbours = static_cast<int>(params.Number("gittins.neighbours", 0, kNeighbours));
  }
  if (spec.sort == "drf") {
    p.history_half_life_s = params.Number("fair_share.half_life", 3600, {.duration = true});
    p.reserve_below_share = params.Number("fair_share.drain", 1, kSwitch) > 0;
    p.move_to_make_room = params.Number("fair_share.move", 1, kSwitch) > 0;
  }
  if (auto s = params.Check(); !s.ok()) return s;
  p.params = params.defaults();
  for (const auto& [key, value] : given) p.params[key] = value;
  return p;
}

std::map<std::string, std::string> PluginRegistry::Defaults(const std::string& policy) const {
  auto built = Build(policy, {});
  return built.ok() ? built->params : std::map<std::string, std::string>{};
}

PluginRegistry& PluginRegistry::Default() {
  static PluginRegistry* registry = [] {
    auto* r = new PluginRegistry;
    auto must = [](absl::Status s) {
      if (!s.ok()) std::abort();
    };
    must(r->AddSort("priority-fifo", [](Params&) { return std::make_shared<PriorityFifoSort>(); }));
    must(r->AddSort("las", [](Params& p) { return std::make_shared<LasSort>(p); }));
    must(r->AddSort("gittins", [](Params& p) { return std::make_shared<GittinsSort>(p); }));
    must(r->AddSort("srtf", [](Params&) { return std::make_shared<SrtfSort>(); }));
    must(r->AddSort("drf", [](Params&) { return std::make_shared<DrfSort>(); }));
    must(r->AddFilter("quota", [](Params&) { return std::make_shared<QuotaFilter>(); }));
    must(r->AddPreempt("priority", [](Params&) { return std::make_shared<PriorityPreempt>(); }));
    must(r->AddPreempt("las", [](Params& p) {
      return std::make_shared<LasPreempt>(std::make_shared<LasSort>(p));
    }));
    must(r->AddPreempt("gittins", [](Params& p) {
      return std::make_shared<GittinsPreempt>(p, std::make_shared<GittinsSort>(p));
    }));
    must(r->AddPreempt("srtf", [](Params&) { return std::make_shared<SrtfPreempt>(); }));
    must(r->AddPreempt("fair-share", [](Params&) { return std::make_shared<FairSharePreempt>(); }));
    using M = ReserveMode;
    must(r->AddPolicy("fifo",
                      {.sort = "priority-fifo", .filters = {"quota"}, .reserve = M::kStrict}));
    must(r->AddPolicy("priority", {.sort = "priority-fifo",
                                   .filters = {"quota"},
                                   .reserve = M::kStrict,
                                   .preempt = "priority"}));
    must(r->AddPolicy("backfill",
                      {.sort = "priority-fifo", .filters = {"quota"}, .reserve = M::kBackfill}));
    must(r->AddPolicy(
        "fair-share",
        {.sort = "drf", .filters = {"quota"}, .reserve = M::kNone, .preempt = "fair-share"}));
    must(r->AddPolicy("las", {.sort = "las",
                              .filters = {"quota"},
                              .reserve = M::kNone,
                              .preempt = "las",
                              .min_runtime_s = 60}));
    must(r->AddPolicy("gittins", {.sort = "gittins",
                                  .filters = {"quota"},
                                  .reserve = M::kNone,
                                  .preempt = "gittins",
                                  .min_runtime_s = 300}));
    must(r->AddPolicy("oracle-srtf", {.sort = "srtf",
                                      .filters = {"quota"},
                                      .reserve = M::kNone,
                                      .preempt = "srtf",
                                      .min_runtime_s = 0}));
    return r;
  }();
  return *registry;
}

}  // namespace dlab
