#include "tboard/tensorboard_ingester.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <utility>

#include "absl/strings/match.h"

namespace dlab {
namespace {

// Groups consecutive scalars of the same step into one report; values that are not finite
// (a NaN loss) are left out, since the store and JSON cannot carry them, and so are tags under
// system/, the names of dlab's own series.
std::vector<MetricReport> ToReports(const std::vector<ScalarEvent>& events, int64_t* skipped) {
  std::vector<MetricReport> reports;
  for (const ScalarEvent& e : events) {
    if (!std::isfinite(e.value) || e.step < 0 || e.tag.empty() ||
        absl::StartsWith(e.tag, kSystemMetricPrefix)) {
      ++*skipped;
      continue;
    }
    if (reports.empty() || reports.back().step != e.step) {
      reports.push_back({.step = e.step, .time = e.wall_time});
    }
    reports.back().values.push_back({.name = e.tag, .value = e.value});
  }
  return reports;
}

}  // namespace

TensorBoardIngester::TensorBoardIngester(MetricsStore* metrics,
                                         std::function<std::vector<WatchedJob>()> running_jobs,
                                         absl::Duration interval)
    : metrics_(metrics), running_jobs_(std::move(running_jobs)), interval_(interval) {}

TensorBoardIngester::~TensorBoardIngester() { Stop(); }

void TensorBoardIngester::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      PollOnce();
      lock.lock();
      wake_.wait_for(lock, absl::ToChronoNanoseconds(interval_), [this] { return stopping_; });
    }
  });
}

void TensorBoardIngester::Stop() {
  std::thread thread;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    thread = std::move(thread_);
  }
  wake_.notify_all();
  if (thread.joinable()) thread.join();
}

void TensorBoardIngester::PollOnce() {
  std::vector<WatchedJob> jobs = running_jobs_();
  std::lock_guard lock(poll_mu_);
  std::map<int64_t, Watch> next;
  for (WatchedJob& job : jobs) {
    auto node = watches_.extract(job.job_id);
    if (!node.empty() && node.mapped().scanner->dir() != job.tensorboard_dir) {
      Ingest(job.job_id, node.mapped());  // the job moved on to a new directory
      node = {};
    }
    Watch& watch = next[job.job_id];
    if (!node.empty()) watch = std::move(node.mapped());
    if (!watch.scanner) {
      watch.scanner = std::make_unique<TensorBoardScanner>(std::move(job.tensorboard_dir));
    }
    watch.attempt = job.attempt;
    Ingest(job.job_id, watch);
  }
  for (const auto& [job_id, watch] : watches_) Ingest(job_id, watch);  // ended: a last read
  watches_ = std::move(next);
}

void TensorBoardIngester::Ingest(int64_t job_id, const Watch& watch) {
  std::vector<ScalarEvent> events = watch.scanner->Poll();
  if (events.empty()) return;
  int64_t skipped = 0;
  std::vector<MetricReport> reports = ToReports(events, &skipped);
  if (skipped > 0) {
    spdlog::debug(
        "tensorboard: job {}: skipped {} scalars that are not finite, lack a tag or "
        "are tagged system/...",
        job_id, skipped);
  }
  if (reports.empty()) return;
  auto written = metrics_->Append(job_id, watch.attempt, reports);
  if (!written.ok()) {
    spdlog::warn("tensorboard: job {}: cannot store {} scalars from {}: {}", job_id,
                 events.size() - static_cast<size_t>(skipped), watch.scanner->dir(),
                 written.status().ToString());
  }
}

}  // namespace dlab
