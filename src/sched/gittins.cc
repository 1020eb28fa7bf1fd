#include "sched/gittins.h"

#include <algorithm>
#include <cmath>

namespace dlab {

const std::vector<double>& ServiceSizes::Grid() {
  static const std::vector<double>* grid = [] {
    auto* g = new std::vector<double>;
    for (double x = 60; x <= 1e10; x *= 1.25) g->push_back(x);
    return g;
  }();
  return *grid;
}

void ServiceSizes::Add(double gpu_s) { sizes_.push_back(std::max(1.0, gpu_s)); }

void ServiceSizes::Rebuild() const {
  std::vector<double> s = sizes_;
  std::sort(s.begin(), s.end());
  std::vector<double> prefix(s.size() + 1, 0.0);
  for (size_t i = 0; i < s.size(); ++i) prefix[i + 1] = prefix[i] + s[i];
  const std::vector<double>& grid = Grid();
  auto above = [&](double x) {  // index of the first size > x
    return static_cast<size_t>(std::upper_bound(s.begin(), s.end(), x) - s.begin());
  };
  const double n = static_cast<double>(s.size());
  // From exact counts and sums; at_grid_.IndexTable() gives the same table up to rounding,
  // which would reorder jobs whose indices are nearly equal.
  table_.assign(grid.size(), 0.0);
  for (size_t ia = 0; ia < grid.size(); ++ia) {
    double a = grid[ia];
    size_t j = above(a);
    if (j == s.size()) break;  // nothing survives a, nor any later point
    double best = 0;
    for (size_t ib = ia + 1; ib < grid.size(); ++ib) {
      double b = grid[ib];
      size_t k = above(b);
      // Sum over survivors of a of (min(S, b) - a): those ending by b, then those past it.
      double cost = (prefix[k] - prefix[j]) - static_cast<double>(k - j) * a +
                    (n - static_cast<double>(k)) * (b - a);
      if (cost > 0) best = std::max(best, static_cast<double>(k - j) / cost);
      if (k == s.size()) break;  // a larger b only adds cost
    }
    table_[ia] = best;
  }
  at_grid_.above.assign(grid.size(), 0.0);
  at_grid_.capped.assign(grid.size(), 0.0);
  for (size_t i = 0; i < grid.size(); ++i) {
    size_t j = above(grid[i]);
    at_grid_.above[i] = (n - static_cast<double>(j)) / n;
    at_grid_.capped[i] = (prefix[j] + (n - static_cast<double>(j)) * grid[i]) / n;
  }
  built_count_ = sizes_.size();
}

void ServiceSizes::Refresh() const {
  if (!sizes_.empty() && (table_.empty() || GrewByATenth(sizes_.size(), built_count_))) {
    Rebuild();
  }
}

const GridDistribution& ServiceSizes::AtGrid() const {
  Refresh();
  return at_grid_;
}

GridDistribution GridDistribution::LogNormal(double median, double sigma) {
  const std::vector<double>& grid = ServiceSizes::Grid();
  const double mu = std::log(std::max(1.0, median));
  sigma = std::max(sigma, 1e-3);
  auto phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  GridDistribution d;
  for (double x : grid) {
    double z = (std::log(x) - mu) / sigma;
    d.above.push_back(1 - phi(z));
    // E[S; S <= x] for a log-normal, plus x for the mass above x.
    d.capped.push_back(std::exp(mu + sigma * sigma / 2) * phi(z - sigma) + x * (1 - phi(z)));
  }
  return d;
}

GridDistribution GridDistribution::Mix(const GridDistribution& a, const GridDistribution& b,
                                       double w) {
  GridDistribution d = a;
  for (size_t i = 0; i < d.above.size() && i < b.above.size(); ++i) {
    d.above[i] = (1 - w) * a.above[i] + w * b.above[i];
    d.capped[i] = (1 - w) * a.capped[i] + w * b.capped[i];
  }
  return d;
}

std::vector<double> GridDistribution::IndexTable() const {
  std::vector<double> table(above.size(), 0.0);
  for (size_t ia = 0; ia < above.size(); ++ia) {
    double best = 0;
    for (size_t ib = ia + 1; ib < above.size(); ++ib) {
      double cost = capped[ib] - capped[ia];
      if (cost > 0) best = std::max(best, (above[ia] - above[ib]) / cost);
    }
    table[ia] = best;
  }
  return table;
}

double GridDistribution::IndexAt(const std::vector<double>& table, double attained) {
  if (table.empty()) return 0;
  const std::vector<double>& grid = ServiceSizes::Grid();
  size_t i =
      static_cast<size_t>(std::upper_bound(grid.begin(), grid.end(), attained) - grid.begin());
  return table[std::min(i, table.size() - 1)];
}

double ServiceSizes::Index(double attained) const {
  Refresh();
  return GridDistribution::IndexAt(table_, attained);
}

}  // namespace dlab
