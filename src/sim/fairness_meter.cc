#include "sim/fairness_meter.h"

#include <algorithm>
#include <numeric>

#include "common/check.h"

namespace dlab::sim {

std::vector<double> WaterFill(const std::vector<double>& demands,
                              const std::vector<double>& weights, double capacity) {
  std::vector<size_t> order(demands.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return demands[a] * weights[b] < demands[b] * weights[a];  // demand / weight, ascending
  });
  double weight_left = 0;
  for (size_t i : order) weight_left += weights[i];
  std::vector<double> share(demands.size(), 0);
  for (size_t i : order) {
    double level = capacity / weight_left;
    share[i] = std::min(demands[i], level * weights[i]);
    capacity = std::max(0.0, capacity - share[i]);
    weight_left -= weights[i];
  }
  return share;
}

FairnessMeter::FairnessMeter(double cluster_gpus, std::vector<double> weights, double grace_s)
    : cluster_gpus_(cluster_gpus),
      weights_(std::move(weights)),
      grace_s_(grace_s),
      held_(weights_.size(), 0),
      queued_(weights_.size(), 0),
      share_(weights_.size(), 0),
      queued_jobs_(weights_.size()),
      queued_s_(weights_.size(), 0),
      ratio_s_(weights_.size(), 0),
      one_job_s_(weights_.size(), 0),
      deprived_since_(weights_.size(), -1),
      busy_held_s_(weights_.size(), 0),
      busy_share_s_(weights_.size(), 0) {}

void FairnessMeter::AdvanceTo(double t) {
  DLAB_CHECK(t >= now_s_);
  if (dirty_) UpdateShares();
  double dt = t - now_s_;
  now_s_ = t;
  if (dt == 0) return;
  for (size_t i = 0; i < weights_.size(); ++i) {
    double held = static_cast<double>(held_[i]);
    if (held_[i] + queued_[i] > 0) {
      busy_held_s_[i] += dt * held;
      busy_share_s_[i] += dt * share_[i];
    }
    if (queued_[i] <= 0 || share_[i] <= 0) {
      deprived_since_[i] = -1;
      continue;
    }
    queued_s_[i] += dt;
    double ratio = held / share_[i];
    ratio_s_[i] += dt * ratio;
    bool deprived = queued_jobs_[i].empty() || held + *queued_jobs_[i].begin() <= share_[i] + 1e-9;
    double served = dt;  // of dt, the time counted as served
    if (deprived) {
      if (deprived_since_[i] < 0) deprived_since_[i] = t - dt;
      served = std::clamp(deprived_since_[i] + grace_s_ - (t - dt), 0.0, dt);
    } else {
      deprived_since_[i] = -1;
    }
    one_job_s_[i] += served * std::max(1.0, ratio) + (dt - served) * ratio;
  }
}

void FairnessMeter::AddHeld(int64_t tenant_id, int gpus) {
  held_[tenant_id - 1] += gpus;
  dirty_ = dirty_ || gpus != 0;
}

void FairnessMeter::AddQueued(int64_t tenant_id, int gpus) {
  queued_[tenant_id - 1] += gpus;
  std::multiset<int>& jobs = queued_jobs_[tenant_id - 1];
  if (gpus > 0) {
    jobs.insert(gpus);
  } else if (auto it = jobs.find(-gpus); gpus < 0 && it != jobs.end()) {
    jobs.erase(it);
  }
  dirty_ = dirty_ || gpus != 0;
}

void FairnessMeter::UpdateShares() {
  std::vector<double> demands(weights_.size());
  for (size_t i = 0; i < weights_.size(); ++i) {
    demands[i] = static_cast<double>(held_[i] + queued_[i]);
  }
  share_ = WaterFill(demands, weights_, cluster_gpus_);
  dirty_ = false;
}

std::vector<TenantFairness> FairnessMeter::Result() const {
  std::vector<TenantFairness> out(weights_.size());
  for (size_t i = 0; i < weights_.size(); ++i) {
    out[i].queued_s = queued_s_[i];
    if (queued_s_[i] > 0) {
      out[i].ratio = ratio_s_[i] / queued_s_[i];
      out[i].ratio_one_job = one_job_s_[i] / queued_s_[i];
    }
    if (busy_share_s_[i] > 0) out[i].busy_ratio = busy_held_s_[i] / busy_share_s_[i];
  }
  return out;
}

}  // namespace dlab::sim
