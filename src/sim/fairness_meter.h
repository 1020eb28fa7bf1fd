// How fairly a simulation shares GPUs among tenants: while a tenant has GPUs queued, the ratio of
// the GPUs it holds to its entitlement, averaged over that time. The entitlement is the tenant's
// max-min fair (water-filling) share of the cluster's GPUs given every tenant's demand (GPUs of
// its running and queued jobs) and weight. Not thread-safe: one simulation owns it.
#pragma once

#include <cstdint>
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
};

class FairnessMeter final {
 public:
  // Tenants are 1..weights.size(), tenant t weighing weights[t - 1].
  FairnessMeter(double cluster_gpus, std::vector<double> weights);

  // Accounts for the time since the last call in the state as it was; changes made after it
  // take effect at t. Times never decrease.
  void AdvanceTo(double t);
  // GPUs a tenant's running jobs hold, and GPUs its queued jobs ask for (negative: fewer).
  void AddHeld(int64_t tenant_id, int gpus);
  void AddQueued(int64_t tenant_id, int gpus);

  std::vector<TenantFairness> Result() const;  // by tenant index (tenant_id - 1)

 private:
  void UpdateShares();

  double cluster_gpus_;
  std::vector<double> weights_;
  std::vector<int64_t> held_, queued_;
  std::vector<double> share_;
  std::vector<double> queued_s_, ratio_s_;  // time queued, and the ratio integrated over it
  double now_s_ = 0;
  bool dirty_ = false;
};

}  // namespace dlab::sim
