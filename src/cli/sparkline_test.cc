#include "cli/sparkline.h"

#include <gtest/gtest.h>

#include <limits>

namespace dlab {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(SparklineTest, RisingSeriesUsesEveryLevel) {
  EXPECT_EQ(Sparkline({0, 1, 2, 3, 4, 5, 6, 7}, 40), "▁▂▃▄▅▆▇█");
}

TEST(SparklineTest, ScalesBetweenTheSeriesMinimumAndMaximum) {
  EXPECT_EQ(Sparkline({2.5, 0.25, 0.5, 0.3, 0.25}, 40), "█▁▂▁▁");
  EXPECT_EQ(Sparkline({-10, 10, 0}, 40), "▁█▅");
}

TEST(SparklineTest, FlatSeriesIsAFlatLine) { EXPECT_EQ(Sparkline({0.25, 0.25, 0.25}, 40), "▄▄▄"); }

TEST(SparklineTest, OnePoint) { EXPECT_EQ(Sparkline({42}, 40), "▄"); }

TEST(SparklineTest, NothingToDraw) {
  EXPECT_EQ(Sparkline({}, 40), "");
  EXPECT_EQ(Sparkline({1, 2, 3}, 0), "");
}

TEST(SparklineTest, LongSeriesIsBucketedToTheWidth) {
  std::vector<double> steps(100, 0.0);
  steps.insert(steps.end(), 100, 1.0);
  EXPECT_EQ(Sparkline(steps, 4), "▁▁██");
  std::vector<double> many(1000);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<double>(i % 7);
  EXPECT_EQ(Sparkline(many, 32).size(), 32 * std::string("▁").size());
}

TEST(SparklineTest, BucketsAreMeans) {
  // Buckets {0, 4}, {2, 2}, {8, 0}, {8, 8}: means 2, 2, 4, 8.
  EXPECT_EQ(Sparkline({0, 4, 2, 2, 8, 0, 8, 8}, 4), "▁▁▃█");
}

TEST(SparklineTest, MissingValuesAreGapsAndDoNotSetTheScale) {
  EXPECT_EQ(Sparkline({0, kNaN, 7, kInf, -kInf}, 40), "▁ █  ");
  EXPECT_EQ(Sparkline({kNaN, kNaN}, 40), "  ");
  EXPECT_EQ(Sparkline({1, kNaN, 3, 5}, 2), "▁█");  // buckets {1, NaN} and {3, 5}
}

TEST(SparklineTest, HugeRangeDoesNotOverflow) {
  double max = std::numeric_limits<double>::max();
  EXPECT_EQ(Sparkline({-max, 0, max}, 40), "▁▅█");
}

}  // namespace
}  // namespace dlab
