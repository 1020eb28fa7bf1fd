#include "tboard/tensorboard_ingester.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "common/testing/temp_dir.h"
#include "tboard/testing/event_files.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

using testing::AppendToFile;

std::string Scalars(int64_t step, const std::vector<std::pair<std::string, float>>& values) {
  return testing::ScalarsRecord(step, 1700000000.0 + static_cast<double>(step), values);
}

class TensorBoardIngesterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = MetricsStore::OpenSqlite((temp_.path() / "metrics.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    metrics_ = *std::move(store);
  }
  std::vector<WatchedJob> Jobs() {
    std::lock_guard lock(mu_);
    return jobs_;
  }
  void SetJobs(std::vector<WatchedJob> jobs) {
    std::lock_guard lock(mu_);
    jobs_ = std::move(jobs);
  }
  // name -> (step -> value) of a job's stored metrics.
  std::map<std::string, std::map<int64_t, double>> Stored(int64_t job_id) {
    std::map<std::string, std::map<int64_t, double>> out;
    auto series = metrics_->Series(job_id, {}, 0);
    EXPECT_TRUE(series.ok()) << series.status();
    if (!series.ok()) return out;
    for (const MetricSeries& s : *series) {
      for (const MetricPoint& p : s.points) out[s.name][p.step] = p.value;
    }
    return out;
  }
  fs::path Dir(int64_t job_id) const {
    return temp_.path() / ("job" + std::to_string(job_id)) / "tensorboard";
  }

  testing::TempDir temp_;
  std::unique_ptr<MetricsStore> metrics_;
  std::mutex mu_;
  std::vector<WatchedJob> jobs_;
};

using Values = std::map<std::string, std::map<int64_t, double>>;

TEST_F(TensorBoardIngesterTest, StoresScalarsOfListedJobsWithAFinalReadAfterTheyEnd) {
  AppendToFile(Dir(1) / "events.out.tfevents.1",
               Scalars(1, {{"loss", 0.5}, {"accuracy", 0.25}}) + Scalars(2, {{"loss", 0.25}}));
  AppendToFile(Dir(2) / "events.out.tfevents.1", Scalars(7, {{"reward", 3}}));
  SetJobs({{.job_id = 1, .attempt = 2, .tensorboard_dir = Dir(1).string()},
           {.job_id = 2, .attempt = 1, .tensorboard_dir = Dir(2).string()}});
  TensorBoardIngester ingester(metrics_.get(), [this] { return Jobs(); });
  ingester.PollOnce();
  EXPECT_EQ(Stored(1), (Values{{"accuracy", {{1, 0.25}}}, {"loss", {{1, 0.5}, {2, 0.25}}}}));
  EXPECT_EQ(Stored(2), (Values{{"reward", {{7, 3}}}}));

  // Job 2 ends after writing more: one last read stores it, later writes are not read.
  AppendToFile(Dir(2) / "events.out.tfevents.1", Scalars(8, {{"reward", 4}}));
  SetJobs({{.job_id = 1, .attempt = 2, .tensorboard_dir = Dir(1).string()}});
  ingester.PollOnce();
  EXPECT_EQ(Stored(2), (Values{{"reward", {{7, 3}, {8, 4}}}}));
  AppendToFile(Dir(2) / "events.out.tfevents.1", Scalars(9, {{"reward", 5}}));
  ingester.PollOnce();
  EXPECT_EQ(Stored(2), (Values{{"reward", {{7, 3}, {8, 4}}}}));

  auto series = metrics_->Series(1, {"loss"}, 0);
  ASSERT_TRUE(series.ok());
  ASSERT_EQ(series->size(), 1u);
  EXPECT_DOUBLE_EQ((*series)[0].latest.time, 1700000002.0);
}

// Non-finite values cannot be stored; system/ names are dlab's own series (see MetricsStore).
TEST_F(TensorBoardIngesterTest, NonFiniteScalarsAndSystemTagsAreLeftOut) {
  AppendToFile(Dir(1) / "events.out.tfevents.1",
               Scalars(1, {{"loss", std::numeric_limits<float>::quiet_NaN()},
                           {"lr", 0.1f},
                           {"system/gpu_utilization_pct", 50}}));
  SetJobs({{.job_id = 1, .tensorboard_dir = Dir(1).string()}});
  TensorBoardIngester ingester(metrics_.get(), [this] { return Jobs(); });
  ingester.PollOnce();
  EXPECT_EQ(Stored(1), (Values{{"lr", {{1, 0.1f}}}}));
}

TEST_F(TensorBoardIngesterTest, ThreadPollsUntilStopped) {
  SetJobs({{.job_id = 3, .tensorboard_dir = Dir(3).string()}});
  TensorBoardIngester ingester(
      metrics_.get(), [this] { return Jobs(); }, absl::Milliseconds(10));
  ingester.Start();
  ingester.Start();  // no second thread
  AppendToFile(Dir(3) / "events.out.tfevents.1", Scalars(1, {{"loss", 1}}));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Stored(3).empty() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(Stored(3), (Values{{"loss", {{1, 1}}}}));
  ingester.Stop();
  ingester.Stop();
}

}  // namespace
}  // namespace dlab
