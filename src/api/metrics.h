// Metrics: counters and histograms for /metrics in the Prometheus text format (HTTP requests,
// scheduling latency), rendered together with gauges the caller supplies (jobs by state).
// Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "common/job.h"

namespace dlab {

class Metrics final {
 public:
  void ObserveRequest(const std::string& method, int status, absl::Duration elapsed);
  void ObserveSchedulingLatency(absl::Duration submit_to_running);
  std::string Render(const std::map<JobState, int64_t>& jobs_by_state) const;

 private:
  static constexpr std::array<double, 14> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                      1,     2.5,  5,     10,   30,  60,   300};
  struct Histogram {
    std::array<int64_t, kBuckets.size()> counts{};
    int64_t count = 0;
    double sum = 0;
    void Observe(double v);
    void Render(const std::string& name, const std::string& labels, std::string* out) const;
  };

  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // GUARDED_BY(mu_)
  Histogram request_seconds_;                                // GUARDED_BY(mu_)
  Histogram scheduling_seconds_;                             // GUARDED_BY(mu_)
};

}  // namespace dlab
