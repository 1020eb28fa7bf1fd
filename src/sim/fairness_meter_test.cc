#include "sim/fairness_meter.h"

#include <gtest/gtest.h>

namespace dlab::sim {
namespace {

TEST(WaterFillTest, CappedDemandsLeaveTheRestToOthers) {
  // 10 GPUs, demands 2, 8, 8: the first gets its 2, the others split 8.
  EXPECT_EQ(WaterFill({2, 8, 8}, {1, 1, 1}, 10), (std::vector<double>{2, 4, 4}));
  // Weights 1 and 3 on 8 GPUs, both wanting 10: 2 and 6.
  EXPECT_EQ(WaterFill({10, 10}, {1, 3}, 8), (std::vector<double>{2, 6}));
  // Weight 3 wants 3 of 4: it gets all 3 (its level would be 3), the other the 1 left.
  EXPECT_EQ(WaterFill({4, 3}, {1, 3}, 4), (std::vector<double>{1, 3}));
  // Everyone satisfied, and nobody demanding.
  EXPECT_EQ(WaterFill({1, 2}, {1, 1}, 10), (std::vector<double>{1, 2}));
  EXPECT_EQ(WaterFill({0, 0}, {1, 1}, 10), (std::vector<double>{0, 0}));
}

TEST(FairnessMeterTest, AveragesHeldOverEntitledWhileQueued) {
  // 4 GPUs. [0, 10): tenant 1 holds 2 and queues 2, tenant 2 holds 1 and queues 2: demands 4
  // and 3, shares 2 and 2; ratios 1 and 0.5. [10, 30): tenant 2 holds 2, queues 1 (demand 3,
  // share 2, ratio 1); tenant 1 unchanged. [30, 40): nothing queued.
  FairnessMeter meter(4, {1, 1});
  meter.AdvanceTo(0);
  meter.AddHeld(1, 2);
  meter.AddQueued(1, 2);
  meter.AddHeld(2, 1);
  meter.AddQueued(2, 2);
  meter.AdvanceTo(10);
  meter.AddHeld(2, 1);
  meter.AddQueued(2, -1);
  meter.AdvanceTo(30);
  meter.AddQueued(1, -2);
  meter.AddQueued(2, -1);
  meter.AdvanceTo(40);
  auto result = meter.Result();
  EXPECT_DOUBLE_EQ(result[0].queued_s, 30);
  EXPECT_DOUBLE_EQ(result[0].ratio, 1.0);
  EXPECT_DOUBLE_EQ(result[1].queued_s, 30);
  EXPECT_DOUBLE_EQ(result[1].ratio, (10 * 0.5 + 20 * 1.0) / 30);
}

TEST(FairnessMeterTest, WeightsSetTheEntitlement) {
  // 4 GPUs, weights 1 and 3, demands 4 and 3: shares 1 and 3. Tenant 1 holds 2 (ratio 2),
  // tenant 2 holds 1 (ratio 1/3).
  FairnessMeter meter(4, {1, 3});
  meter.AddHeld(1, 2);
  meter.AddQueued(1, 2);
  meter.AddHeld(2, 1);
  meter.AddQueued(2, 2);
  meter.AdvanceTo(5);
  auto result = meter.Result();
  EXPECT_DOUBLE_EQ(result[0].ratio, 2.0);
  EXPECT_DOUBLE_EQ(result[1].ratio, 1.0 / 3);
}

TEST(FairnessMeterTest, UpToOneJobAndOverBusyTime) {
  // 8 GPUs. [0, 10): tenant 1 holds 8; tenant 2 queues a 6-GPU job. Demands 8 and 6: shares 4
  // and 4. Tenant 2 holds nothing, but its one job would take it past its share: served, up to
  // one job. [10, 20): tenant 2 also queues a 2-GPU job, which fits its share: deprived.
  // [20, 30): tenant 1's job ends, tenant 2's two start (demand 8, share 8).
  FairnessMeter meter(8, {1, 1});
  meter.AddHeld(1, 8);
  meter.AddQueued(2, 6);
  meter.AdvanceTo(10);
  meter.AddQueued(2, 2);
  meter.AdvanceTo(20);
  meter.AddHeld(1, -8);
  meter.AddQueued(2, -6);
  meter.AddQueued(2, -2);
  meter.AddHeld(2, 8);
  meter.AdvanceTo(30);
  auto result = meter.Result();
  EXPECT_DOUBLE_EQ(result[1].queued_s, 20);
  EXPECT_DOUBLE_EQ(result[1].ratio, 0);
  EXPECT_DOUBLE_EQ(result[1].ratio_one_job, 0.5);
  // GPU-seconds held over entitled while it had work: 8 * 10 of 4 * 20 + 8 * 10.
  EXPECT_DOUBLE_EQ(result[1].busy_ratio, 0.5);
  // Tenant 1 held 8 of its 4 for 20 s, never queued.
  EXPECT_DOUBLE_EQ(result[0].busy_ratio, 2);
  EXPECT_DOUBLE_EQ(result[0].ratio_one_job, 1);
}

TEST(FairnessMeterTest, TheGraceCountsTheFirstSecondsOfADeprivationAsServed) {
  // As above with a grace of 4 s: of tenant 2's 10 s deprived, the first 4 count as served.
  FairnessMeter meter(8, {1, 1}, 4);
  meter.AddHeld(1, 8);
  meter.AddQueued(2, 6);
  meter.AdvanceTo(10);
  meter.AddQueued(2, 2);
  meter.AdvanceTo(12);  // an event inside the grace does not restart it
  meter.AdvanceTo(20);
  EXPECT_DOUBLE_EQ(meter.Result()[1].ratio_one_job, (10 + 4) / 20.0);
}

}  // namespace
}  // namespace dlab::sim
