// TensorBoardIngester: a background thread that, every interval, reads the new scalars of the
// TensorBoard event files of running jobs and appends them to the MetricsStore (the tag becomes
// the metric name; scalars of the same step form one report). It keeps one TensorBoardScanner per
// job and drops it, after a final read, once the job is no longer listed. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "store/metrics_store.h"
#include "tboard/tensorboard_scanner.h"

namespace dlab {

struct WatchedJob {
  int64_t job_id = 0;
  int attempt = 0;
  std::string tensorboard_dir;  // e.g. $DLAB_OUTPUT_DIR/tensorboard of the attempt
};

class TensorBoardIngester final {
 public:
  // running_jobs is called on the ingester's thread (and by PollOnce's caller); it must be
  // thread-safe. metrics must outlive the ingester.
  TensorBoardIngester(MetricsStore* metrics, std::function<std::vector<WatchedJob>()> running_jobs,
                      absl::Duration interval = absl::Seconds(2));
  ~TensorBoardIngester();  // Stop()
  TensorBoardIngester(const TensorBoardIngester&) = delete;
  TensorBoardIngester& operator=(const TensorBoardIngester&) = delete;

  // Starts the polling thread; a second Start while running does nothing.
  void Start();
  // Stops and joins the thread; the scanners are kept, so Start goes on where it stopped.
  void Stop();
  // One round: reads every listed job's new scalars and stores them. Failures to store are
  // logged (the values are dropped: event files are not re-read).
  void PollOnce();

 private:
  struct Watch {
    int attempt = 0;
    std::unique_ptr<TensorBoardScanner> scanner;
  };

  void Ingest(int64_t job_id, const Watch& watch);

  MetricsStore* const metrics_;
  const std::function<std::vector<WatchedJob>()> running_jobs_;
  const absl::Duration interval_;

  std::mutex poll_mu_;                // serializes PollOnce
  std::map<int64_t, Watch> watches_;  // by job id; GUARDED_BY(poll_mu_)

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace dlab
