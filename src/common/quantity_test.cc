#include "common/quantity.h"

#include <gtest/gtest.h>

namespace dlab {
namespace {

TEST(QuantityTest, CpuForms) {
  EXPECT_EQ(*ParseCpuMillis("2"), 2000);
  EXPECT_EQ(*ParseCpuMillis("0.5"), 500);
  EXPECT_EQ(*ParseCpuMillis("250m"), 250);
  EXPECT_FALSE(ParseCpuMillis("two").ok());
  EXPECT_FALSE(ParseCpuMillis("2Gi").ok());
  EXPECT_FALSE(ParseCpuMillis("0").ok());
  EXPECT_FALSE(ParseCpuMillis("-1").ok());
  EXPECT_EQ(FormatCpuMillis(2000), "2");
  EXPECT_EQ(FormatCpuMillis(500), "500m");
}

TEST(QuantityTest, MemoryForms) {
  EXPECT_EQ(*ParseMemoryBytes("4Gi"), 4LL << 30);
  EXPECT_EQ(*ParseMemoryBytes("512Mi"), 512LL << 20);
  EXPECT_EQ(*ParseMemoryBytes("1G"), 1000000000);
  EXPECT_EQ(*ParseMemoryBytes("1000"), 1000);
  EXPECT_EQ(*ParseMemoryBytes("1.5Gi"), 3LL << 29);
  EXPECT_FALSE(ParseMemoryBytes("4GB").ok());
  EXPECT_FALSE(ParseMemoryBytes("lots").ok());
  EXPECT_EQ(FormatMemoryBytes(4LL << 30), "4Gi");
  EXPECT_EQ(FormatMemoryBytes(3LL << 29), "1536Mi");
}

TEST(QuantityTest, Durations) {
  EXPECT_EQ(*ParseDuration("2h"), absl::Hours(2));
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("45"), absl::Seconds(45));
  EXPECT_FALSE(ParseDuration("soon").ok());
  EXPECT_FALSE(ParseDuration("-5s").ok());
}

}  // namespace
}  // namespace dlab
