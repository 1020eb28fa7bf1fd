// The monitoring of one dlabd: samples telemetry every interval into a window, records each
// running job's GPU utilisation with the job (as metric series), evaluates the alert rules
// against the samples and against what dlab knows (failed jobs, lost nodes, tenants at quota),
// delivers alert transitions to webhooks and keeps the recent ones for the API.
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
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "monitor/alerts.h"
#include "monitor/telemetry.h"
#include "monitor/webhook.h"
#include "store/metrics_store.h"

namespace dlab {

// The series the monitor records for every running job whose GPUs all have the reading: the
// mean utilisation of its GPUs and the mean of their memory used (% of total). The step of a
// point is the whole seconds from the job's first start to the sample.
inline constexpr char kJobGpuUtilizationMetric[] = "system/gpu_utilization_pct";
inline constexpr char kJobGpuMemoryUsedMetric[] = "system/gpu_memory_used_pct";

struct MonitorOptions {
  absl::Duration interval = absl::Seconds(5);
  absl::Duration window = absl::Hours(1);
  std::vector<AlertRule> rules;
  WebhookOptions webhook;
  // Where the per-job GPU series are recorded; null: they are not. Must outlive the service.
  MetricsStore* job_metrics = nullptr;
};

// What a running job holds of this node's GPUs.
struct JobGpus {
  std::vector<int> gpus;  // device indices on the node
  int attempt = 0;
  std::optional<absl::Time> start_time;  // the job's first start; unset: not started yet
};

// What dlab knows, asked at every evaluation; each may be unset.
struct MonitorInputs {
  std::function<std::map<int64_t, JobGpus>()> job_gpus;                  // running job -> its GPUs
  std::function<std::map<std::string, std::string>()> failed_jobs;       // "job N" -> why
  std::function<std::map<std::string, std::string>()> lost_nodes;        // "node X" -> why
  std::function<std::map<std::string, std::string>()> tenants_at_quota;  // "tenant X" -> what
};

class MonitorService {
 public:
  MonitorService(MonitorOptions options, std::unique_ptr<TelemetrySource> source,
                 MonitorInputs inputs);
  ~MonitorService();

  void Start();
  void Stop();  // joins the sampling thread; also done by the destructor
  // One sample, the per-job GPU series recorded and one evaluation of every rule at `now` (what
  // the thread does each interval). A failure to record is logged, once until it succeeds again.
  void Tick(absl::Time now);

  const TelemetryStore& telemetry() const { return store_; }
  std::vector<AlertEvent> Firing() const;
  std::vector<AlertEvent> Recent() const;  // the last 200 transitions, oldest first
  WebhookStats webhook_stats() const { return notifier_.Stats(); }
  // /metrics: the latest telemetry (DCGM style) and dlab_alerts_firing.
  std::string Prometheus() const;

 private:
  void Loop();
  void RecordJobGpus(const TelemetrySample& sample, const std::map<int64_t, JobGpus>& job_gpus);

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
  bool recording_failed_ = false;  // the last record failed; Tick's alone (one Tick at a time)
  std::thread thread_;
};

}  // namespace dlab
