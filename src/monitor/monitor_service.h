// The monitoring of one dlabd: samples telemetry every interval into a window, evaluates the
// alert rules against it and against what dlab knows (failed jobs, lost nodes, tenants at
// quota), delivers alert transitions to webhooks and keeps the recent ones for the API.
// Thread-safe; Start() runs the sampling thread, the destructor stops it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "monitor/alerts.h"
#include "monitor/telemetry.h"
#include "monitor/webhook.h"

namespace dlab {

struct MonitorOptions {
  absl::Duration interval = absl::Seconds(5);
  absl::Duration window = absl::Hours(1);
  std::vector<AlertRule> rules;
  WebhookOptions webhook;
};

// What dlab knows, asked at every evaluation; each may be unset.
struct MonitorInputs {
  std::function<std::map<int64_t, std::vector<int>>()> job_gpus;    // running job -> GPU indices
  std::function<std::map<std::string, std::string>()> failed_jobs;  // "job N" -> why
  std::function<std::map<std::string, std::string>()> lost_nodes;   // "node X" -> why
  std::function<std::map<std::string, std::string>()> tenants_at_quota;  // "tenant X" -> what
};

class MonitorService {
 public:
  MonitorService(MonitorOptions options, std::unique_ptr<TelemetrySource> source,
                 MonitorInputs inputs);
  ~MonitorService();

  void Start();
  void Stop();  // joins the sampling thread; also done by the destructor
  // One sample and one evaluation of every rule at `now` (what the thread does each interval).
  void Tick(absl::Time now);

  const TelemetryStore& telemetry() const { return store_; }
  std::vector<AlertEvent> Firing() const;
  std::vector<AlertEvent> Recent() const;  // the last 200 transitions, oldest first
  WebhookStats webhook_stats() const { return notifier_.Stats(); }
  // /metrics: the latest telemetry (DCGM style) and dlab_alerts_firing.
  std::string Prometheus() const;

 private:
  void Loop();

  const MonitorOptions options_;
  std::unique_ptr<TelemetrySource> source_;
  const MonitorInputs inputs_;
  TelemetryStore store_;
  WebhookNotifier notifier_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  AlertEngine engine_ ABSL_GUARDED_BY(mu_);
  std::deque<AlertEvent> recent_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::vector<int>> job_gpus_ ABSL_GUARDED_BY(mu_);  // at the last tick
  std::thread thread_;
};

}  // namespace dlab
