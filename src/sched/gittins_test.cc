#include "sched/gittins.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dlab
