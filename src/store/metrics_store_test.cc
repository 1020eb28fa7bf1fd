#include "store/metrics_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>

#include "common/testing/temp_dir.h"

namespace dlab {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class MetricsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = Open(); }
  std::unique_ptr<MetricsStore> Open() {
    auto s = MetricsStore::OpenSqlite((temp_.path() / "metrics.db").string());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  // One report per step in [first, last] with loss = step / 10.
  static std::vector<MetricReport> LossReports(int64_t first, int64_t last) {
    std::vector<MetricReport> reports;
    for (int64_t step = first; step <= last; ++step) {
      reports.push_back({.step = step,
                         .time = 1000.0 + static_cast<double>(step),
                         .values = {{"loss", static_cast<double>(step) / 10}}});
    }
    return reports;
  }

  testing::TempDir temp_;
  std::unique_ptr<MetricsStore> store_;
};

std::vector<int64_t> Steps(const MetricSeries& series) {
  std::vector<int64_t> steps;
  for (const MetricPoint& p : series.points) steps.push_back(p.step);
  return steps;
}

TEST_F(MetricsStoreTest, AppendThenSeriesRoundTripSortedByName) {
  auto written = store_->Append(
      7, 1,
      {{.step = 2, .time = 100.5, .values = {{"loss", 0.5}, {"accuracy", 0.75}}},
       {.step = 1, .time = 99.25, .values = {{"loss", 0.9}, {"accuracy", 0.5}, {"lr", 1e-3}}}});
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, 5);
  ASSERT_TRUE(store_->Append(8, 1, {{.step = 1, .time = 1, .values = {{"other", 1}}}}).ok());

  auto all = store_->Series(7, {}, 0);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name, "accuracy");
  EXPECT_EQ((*all)[1].name, "loss");
  EXPECT_EQ((*all)[2].name, "lr");
  const MetricSeries& loss = (*all)[1];
  EXPECT_EQ(loss.count, 2);
  ASSERT_EQ(loss.points.size(), 2u);
  EXPECT_EQ(loss.points[0].step, 1);
  EXPECT_DOUBLE_EQ(loss.points[0].time, 99.25);
  EXPECT_DOUBLE_EQ(loss.points[0].value, 0.9);
  EXPECT_EQ(loss.latest.step, 2);
  EXPECT_DOUBLE_EQ(loss.latest.value, 0.5);

  auto some = store_->Series(7, {"lr", "missing", "accuracy", "lr"}, 0);
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ((*some)[0].name, "accuracy");
  EXPECT_EQ((*some)[1].name, "lr");
  auto none = store_->Series(99, {}, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(MetricsStoreTest, RepeatedStepOverwritesTheEarlierValue) {
  ASSERT_TRUE(store_->Append(1, 1, LossReports(0, 9)).ok());
  // A resumed attempt redoes steps 5..6.
  auto written = store_->Append(1, 2,
                                {{.step = 5, .time = 2000, .values = {{"loss", 42}}},
                                 {.step = 6, .time = 2001, .values = {{"loss", 43}}}});
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(*written, 2);
  auto series = store_->Series(1, {"loss"}, 0);
  ASSERT_TRUE(series.ok());
  ASSERT_EQ(series->size(), 1u);
  EXPECT_EQ((*series)[0].count, 10);
  EXPECT_DOUBLE_EQ((*series)[0].points[5].value, 42);
  EXPECT_DOUBLE_EQ((*series)[0].points[5].time, 2000);
  EXPECT_DOUBLE_EQ((*series)[0].points[6].value, 43);
  EXPECT_DOUBLE_EQ((*series)[0].points[7].value, 0.7);
}

TEST_F(MetricsStoreTest, InvalidReportsAreRejectedWhole) {
  auto nan = store_->Append(
      1, 1,
      {{.step = 1, .values = {{"loss", 1}}}, {.step = 2, .values = {{"loss", std::nan("")}}}});
  EXPECT_EQ(nan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.status().message(), HasSubstr("'loss' at step 2"));
  EXPECT_EQ(store_->Append(1, 1, {{.step = -1, .values = {{"loss", 1}}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Append(1, 1, {{.step = 1, .values = {{"", 1}}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto series = store_->Series(1, {}, 0);
  ASSERT_TRUE(series.ok());
  EXPECT_TRUE(series->empty());
}

TEST_F(MetricsStoreTest, DownsamplingKeepsEndsCountAndSpikes) {
  std::vector<MetricReport> reports = LossReports(0, 9999);
  reports[5001].values[0].value = 1e6;   // a spike up
  reports[7003].values[0].value = -1e6;  // and one down
  ASSERT_TRUE(store_->Append(3, 1, reports).ok());
  auto series = store_->Series(3, {"loss"}, 100);
  ASSERT_TRUE(series.ok());
  ASSERT_EQ(series->size(), 1u);
  const MetricSeries& s = (*series)[0];
  EXPECT_EQ(s.count, 10000);
  EXPECT_LE(s.points.size(), 100u);
  EXPECT_GE(s.points.size(), 90u);
  EXPECT_EQ(s.points.front().step, 0);
  EXPECT_EQ(s.points.back().step, 9999);
  EXPECT_EQ(s.latest.step, 9999);
  std::vector<int64_t> steps = Steps(s);
  EXPECT_TRUE(std::is_sorted(steps.begin(), steps.end()));
  EXPECT_NE(std::find(steps.begin(), steps.end(), 5001), steps.end());
  EXPECT_NE(std::find(steps.begin(), steps.end(), 7003), steps.end());
}

TEST(DownsampleMinMaxTest, SmallBudgets) {
  std::vector<MetricPoint> points;
  for (int i = 0; i < 10; ++i) points.push_back({.step = i, .value = i == 4 ? -50.0 : i});
  EXPECT_EQ(DownsampleMinMax(points, 0).size(), 10u);
  EXPECT_EQ(DownsampleMinMax(points, 10).size(), 10u);
  auto steps = [](const std::vector<MetricPoint>& p) {
    std::vector<int64_t> out;
    for (const MetricPoint& x : p) out.push_back(x.step);
    return out;
  };
  EXPECT_THAT(steps(DownsampleMinMax(points, 1)), ElementsAre(9));
  EXPECT_THAT(steps(DownsampleMinMax(points, 2)), ElementsAre(0, 9));
  EXPECT_THAT(steps(DownsampleMinMax(points, 3)), ElementsAre(0, 4, 9));
  EXPECT_THAT(steps(DownsampleMinMax(points, 4)), ElementsAre(0, 4, 8, 9));
}

TEST_F(MetricsStoreTest, CheckpointsListOldestFirstAndLatestIsTheNewest) {
  auto none = store_->LatestCheckpoint(5);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  absl::Time t = absl::FromUnixMillis(1763800000123);
  auto first = store_->AddCheckpoint({.job_id = 5,
                                      .attempt = 1,
                                      .step = 100,
                                      .path = "/ckpt/100",
                                      .metrics = {{"loss", 0.3}},
                                      .time = t});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT(first->id, 0);
  EXPECT_EQ(first->time, t);
  absl::Time before = absl::Now();
  auto second = store_->AddCheckpoint({.job_id = 5, .attempt = 2, .step = 50, .path = "/ckpt/50"});
  ASSERT_TRUE(second.ok());
  EXPECT_GT(second->id, first->id);
  EXPECT_GE(second->time, before - absl::Milliseconds(1));
  ASSERT_TRUE(store_->AddCheckpoint({.job_id = 6, .path = "/other"}).ok());

  auto list = store_->ListCheckpoints(5);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].path, "/ckpt/100");
  EXPECT_EQ((*list)[0].attempt, 1);
  EXPECT_EQ((*list)[0].step, 100);
  EXPECT_EQ((*list)[0].metrics, (std::map<std::string, double>{{"loss", 0.3}}));
  EXPECT_EQ((*list)[0].time, t);
  EXPECT_EQ((*list)[1].path, "/ckpt/50");
  auto latest = store_->LatestCheckpoint(5);
  ASSERT_TRUE(latest.ok());
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->id, second->id);  // the most recently recorded, not the highest step
  EXPECT_EQ((*latest)->step, 50);

  EXPECT_EQ(store_->AddCheckpoint({.job_id = 5}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MetricsStoreTest, ARepeatedCheckpointIsRecordedOnce) {
  auto first = store_->AddCheckpoint({.job_id = 3, .attempt = 1, .step = 10, .path = "/c/10"});
  auto again = store_->AddCheckpoint({.job_id = 3, .attempt = 1, .step = 10, .path = "/c/10"});
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(again->id, first->id);
  // The same step saved again by a later attempt is a new record.
  auto later = store_->AddCheckpoint({.job_id = 3, .attempt = 2, .step = 10, .path = "/c/10"});
  ASSERT_TRUE(later.ok());
  EXPECT_NE(later->id, first->id);
  EXPECT_EQ(store_->ListCheckpoints(3)->size(), 2u);
}

TEST_F(MetricsStoreTest, ReopenKeepsMetricsAndCheckpoints) {
  ASSERT_TRUE(store_->Append(1, 1, LossReports(0, 4)).ok());
  ASSERT_TRUE(store_->AddCheckpoint({.job_id = 1, .step = 4, .path = "/c"}).ok());
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  auto series = store_->Series(1, {}, 0);
  ASSERT_TRUE(series.ok());
  ASSERT_EQ(series->size(), 1u);
  EXPECT_EQ((*series)[0].count, 5);
  auto latest = store_->LatestCheckpoint(1);
  ASSERT_TRUE(latest.ok());
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->path, "/c");
  // New names after reopening still get their own ids.
  ASSERT_TRUE(store_->Append(1, 1, {{.step = 9, .values = {{"accuracy", 1}}}}).ok());
  series = store_->Series(1, {}, 0);
  ASSERT_TRUE(series.ok());
  EXPECT_EQ(series->size(), 2u);
}

TEST_F(MetricsStoreTest, NewerSchemaIsRefused) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((temp_.path() / "metrics.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto reopened = MetricsStore::OpenSqlite((temp_.path() / "metrics.db").string());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(reopened.status().message(), HasSubstr("schema version 99 is newer"));
}

// Prints the ingestion rate (not asserted: the machine is shared): batches of 1,000 reports with
// 3 values each, spread over 4 jobs, as a training loop posting every few seconds would send.
TEST_F(MetricsStoreTest, AppendRate) {
  constexpr int kBatches = 100;
  constexpr int kBatchReports = 1000;
  std::vector<MetricReport> batch(kBatchReports);
  const auto start = std::chrono::steady_clock::now();
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kBatchReports; ++i) {
      const int64_t step = int64_t{b / 4} * kBatchReports + i;
      batch[i] = {.step = step,
                  .time = 1.7e9 + static_cast<double>(step),
                  .values = {{"loss", 1.0 / (1 + step)},
                             {"accuracy", 0.5 + 0.1 * (i % 5)},
                             {"learning_rate", 1e-3}}};
    }
    auto written = store_->Append(1 + b % 4, 1, batch);
    ASSERT_TRUE(written.ok()) << written.status();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double reports = double{kBatches} * kBatchReports;
  std::printf("MetricsStore::Append: %.0f reports/s (%.0f values/s), %d batches of %d reports\n",
              reports / seconds, 3 * reports / seconds, kBatches, kBatchReports);
  auto series = store_->Series(1, {"loss"}, 1000);
  ASSERT_TRUE(series.ok());
  EXPECT_EQ((*series)[0].count, int64_t{kBatches / 4} * kBatchReports);
}

}  // namespace
}  // namespace dlab
