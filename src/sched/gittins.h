// The Gittins index of a job's attained service, over a distribution of job sizes learned from
// jobs that ended (Gittins 1989; Tiresias' "2D-Gittins", NSDI'19). For a job that has received
// `a` GPU-seconds, the index is max over b > a of P(S <= b | S > a) / E[min(S, b) - a | S > a]:
// the chance of finishing within the next quantum over the service that quantum costs. Serving
// the highest index first minimises average completion time among policies that know only the
// attained service and the distribution. Thread-compatible.
#pragma once

#include <cstddef>
#include <vector>

namespace dlab {

class ServiceSizes {
 public:
  // Adds the total GPU-seconds of a job that ended (values below 1 count as 1).
  void Add(double gpu_s);
  size_t count() const { return sizes_.size(); }

  // The index at `attained` GPU-seconds, evaluated on a geometric grid (60 s x 1.25^k); 0 when
  // no recorded size exceeds it. The table behind it is rebuilt when the count has grown by a
  // tenth since it was last built, so repeated calls are cheap.
  double Index(double attained) const;

  // The grid points (GPU-seconds), for tests and callers that recheck at them.
  static const std::vector<double>& Grid();

  // Whether `count` sizes are a tenth more than `since`: when a table, or keys read from
  // tables, are computed again.
  static bool GrewByATenth(size_t count, size_t since) {
    return count > since && static_cast<double>(count) >= 1.1 * static_cast<double>(since);
  }

 private:
  void Rebuild() const;

  std::vector<double> sizes_;
  mutable size_t built_count_ = 0;
  mutable std::vector<double> table_;  // by grid point
};

}  // namespace dlab
