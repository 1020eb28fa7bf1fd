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

// A distribution of job sizes read at ServiceSizes::Grid()'s points: P(S > x) and E[min(S, x)].
// Both are linear in the distribution, so a mixture's are the weighted sums of its parts', and
// so is its index: P(a < S <= b) = above(a) - above(b), E[min(S, b) - min(S, a)] =
// capped(b) - capped(a).
struct GridDistribution {
  std::vector<double> above;   // P(S > x)
  std::vector<double> capped;  // E[min(S, x)]

  // A log-normal distribution of sizes with this median and standard deviation of log size.
  static GridDistribution LogNormal(double median, double sigma);
  // (1 - w) of a and w of b.
  static GridDistribution Mix(const GridDistribution& a, const GridDistribution& b, double w);
  // The index at each grid point: max over later points b of P(a < S <= b) / E[min(S, b) -
  // min(S, a)] (the same as ServiceSizes::Index for the distribution of recorded sizes).
  std::vector<double> IndexTable() const;
  // A table's value for a job with `attained` GPU-seconds (the first grid point above it).
  static double IndexAt(const std::vector<double>& table, double attained);
};

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

  // The distribution at the grid points, from which index tables of mixtures are made (see
  // GridDistribution); empty when no size was added.
  const GridDistribution& AtGrid() const;

  // Whether `count` sizes are a tenth more than `since`: when a table, or keys read from
  // tables, are computed again.
  static bool GrewByATenth(size_t count, size_t since) {
    return count > since && static_cast<double>(count) >= 1.1 * static_cast<double>(since);
  }

 private:
  // Rebuilds the tables when they are missing or a tenth more sizes were added since.
  void Refresh() const;
  void Rebuild() const;

  std::vector<double> sizes_;
  mutable size_t built_count_ = 0;
  mutable std::vector<double> table_;  // by grid point
  mutable GridDistribution at_grid_;
};

}  // namespace dlab
