#include "sched/gittins.h"

#include <gtest/gtest.h>

#include <cmath>

namespace dlab {
namespace {

// The first grid point above x, as Index evaluates it.
double GridAbove(double x) {
  for (double g : ServiceSizes::Grid()) {
    if (g > x) return g;
  }
  return ServiceSizes::Grid().back();
}

TEST(ServiceSizesTest, IndexIsTheBestChanceOfEndingPerGpuSecondWorkedOutByHand) {
  ServiceSizes sizes;
  sizes.Add(100);
  sizes.Add(100);
  sizes.Add(10000);
  // A fresh job (evaluated at the first grid point, a = 60): the best quantum ends at the
  // first grid point b >= 100; two of the three jobs end by then. Expected service spent:
  // (100 - a) for each of those two, (b - a) for the long one; over 3 jobs the 3 cancels.
  double a = GridAbove(0), b = GridAbove(99.999);
  EXPECT_NEAR(sizes.Index(0), 2.0 / (2 * (100 - a) + (b - a)), 1e-12);
  // Past 100 only the 10,000 GPU-s job is left: it ends for sure after 10,000 - a more.
  a = GridAbove(200);
  EXPECT_NEAR(sizes.Index(200), 1.0 / (10000 - a), 1e-12);
  // Past every recorded size: nothing is known to end.
  EXPECT_EQ(sizes.Index(20000), 0);
}

TEST(ServiceSizesTest, DecreasingLikeLasForHeavyTailsRisingForKnownSizes) {
  // Many short jobs and a few very long ones: a job that has outlived the short ones is likely
  // long, so its index falls (least attained service first).
  ServiceSizes tail;
  for (int i = 0; i < 90; ++i) tail.Add(300);
  for (int i = 0; i < 10; ++i) tail.Add(1e6);
  EXPECT_GT(tail.Index(0), tail.Index(1000));
  // Every job needs 5,000 GPU-s: one that has 4,000 is nearly done and goes first (where
  // las would put it last).
  ServiceSizes fixed;
  for (int i = 0; i < 20; ++i) fixed.Add(5000);
  EXPECT_GT(fixed.Index(4000), fixed.Index(0));
}

TEST(ServiceSizesTest, TheTableFollowsNewSizes) {
  ServiceSizes sizes;
  for (int i = 0; i < 10; ++i) sizes.Add(1000);
  EXPECT_EQ(sizes.Index(2000), 0);
  for (int i = 0; i < 10; ++i) sizes.Add(1e5);  // doubles the count: the table is rebuilt
  EXPECT_GT(sizes.Index(2000), 0);
  EXPECT_EQ(sizes.count(), 20u);
}

TEST(GridDistributionTest, ItsIndexTableIsTheSizesIndex) {
  ServiceSizes sizes;
  for (double x : {100.0, 100.0, 10000.0, 2500.0, 1e6}) sizes.Add(x);
  std::vector<double> table = sizes.AtGrid().IndexTable();
  for (double a : {0.0, 99.0, 150.0, 3000.0, 5e5, 2e6}) {
    EXPECT_NEAR(GridDistribution::IndexAt(table, a), sizes.Index(a), 1e-12 * sizes.Index(0)) << a;
  }
}

TEST(GridDistributionTest, LogNormalMatchesItsMoments) {
  GridDistribution d = GridDistribution::LogNormal(1000, 0.5);
  const std::vector<double>& grid = ServiceSizes::Grid();
  for (size_t i = 0; i < grid.size(); ++i) {
    // Half the mass above the median; E[min(S, x)] approaches the mean, e^(mu + sigma^2/2).
    if (grid[i] < 1000 && grid[i + 1] > 1000) {
      EXPECT_GT(d.above[i], 0.5);
      EXPECT_LT(d.above[i + 1], 0.5);
    }
  }
  EXPECT_NEAR(d.capped.back(), 1000 * std::exp(0.125), 1e-6);
  EXPECT_NEAR(d.capped.front(), grid.front(), 1e-6);  // nearly all of it is above 60
}

TEST(GridDistributionTest, AMixtureLeansTowardsTheNeighboursSize) {
  ServiceSizes sizes;  // half short, half long
  for (int i = 0; i < 50; ++i) sizes.Add(300);
  for (int i = 0; i < 50; ++i) sizes.Add(30000);
  auto fresh = [&](double near) {
    return GridDistribution::IndexAt(
        GridDistribution::Mix(sizes.AtGrid(), GridDistribution::LogNormal(near, 0.8), 0.5)
            .IndexTable(),
        0);
  };
  EXPECT_GT(fresh(300), sizes.Index(0));
  EXPECT_LT(fresh(30000), sizes.Index(0));
  // Weight 0: the sizes alone.
  EXPECT_NEAR(GridDistribution::IndexAt(
                  GridDistribution::Mix(sizes.AtGrid(), GridDistribution::LogNormal(300, 0.8), 0)
                      .IndexTable(),
                  0),
              sizes.Index(0), 1e-12);
}

}  // namespace
}  // namespace dlab
