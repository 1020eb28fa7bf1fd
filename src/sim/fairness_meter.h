// How fairly a simulation shares GPUs among tenants: while a tenant has GPUs queued, the ratio of
// the GPUs it holds to its entitlement, averaged over that time. The entitlement is the tenant's
// max-min fair (water-filling) share of the cluster's GPUs given every tenant's demand (GPUs of
// its running and queued jobs) and weight. Not thread-safe: one simulation owns it.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

namespace dlab::sim {

// Capacity split in proportion to weights, nobody getting more than its demand, what a capped
// one leaves split among the others (weighted max-min fairness). Demands and weights by index;
// weights > 0.
std::vector<double> WaterFill(const std::vector<double>& demands,
                              const std::vector<double>& weights, double capacity);

struct TenantFairness {
  double queued_s = 0;  // time with GPUs queued
  double ratio = 1;     // held / entitled, averaged over queued_s; 1 when queued_s is 0
  // The same, fair up to one job and the grace: the tenant counts as served (ratio max(1, held /
  // entitled)) while its smallest queued job would take it past its entitlement, and for the
  // first grace seconds of each time it is deprived (its smallest job fits its entitlement).
  double ratio_one_job = 1;
  // Over the time the tenant had work (held or queued GPUs): GPU-seconds held over GPU-seconds
  // entitled; 1 when it never had work.
  double busy_ratio = 1;
};

class FairnessMeter final {
 public:
  // Tenants are 1..weights.size(), tenant t weighing weights[t - 1]. grace_s: the wait a policy
  // that never preempts a job younger than that may impose (ratio_one_job).
  FairnessMeter(double cluster_gpus, std::vector<double> weights, double grace_s = 0);

  // Accounts for the time since the last call in the state as it was; changes made after it
  // take effect at t. Times never decrease.
  void AdvanceTo(double t);
  // GPUs a tenant's running jobs hold (negative: fewer).
  void AddHeld(int64_t tenant_id, int gpus);
  // A job of the tenant asking for `gpus` entered the queue; -gpus: it left.
  void AddQueued(int64_t tenant_id, int gpus);

  std::vector<TenantFairness> Result() const;  // by tenant index (tenant_id - 1)

 private:
  void UpdateShares();

  double cluster_gpus_;
  std::vector<double> weights_;
  double grace_s_;
  std::vector<int64_t> held_, queued_;
  std::vector<double> share_;
  std::vector<std::multiset<int>> queued_jobs_;     // the GPUs of each queued job, by tenant
  std::vector<double> queued_s_, ratio_s_;          // time queued, and the ratio integrated over it
  std::vector<double> one_job_s_;                   // ratio_one_job integrated over the time queued
  std::vector<double> deprived_since_;              // start of the tenant's deprivation; < 0: none
  std::vector<double> busy_held_s_, busy_share_s_;  // GPU-seconds held and entitled, with work
  double now_s_ = 0;
  bool dirty_ = false;
};

}  // namespace dlab::sim
