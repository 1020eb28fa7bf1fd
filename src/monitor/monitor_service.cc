#include "monitor/monitor_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace dlab {
namespace {

std::map<std::string, AlertObservation> Active(const std::map<std::string, std::string>& keys) {
  std::map<std::string, AlertObservation> out;
  for (const auto& [key, why] : keys) out[key] = {.active = true, .message = why};
  return out;
}

// The mean of a reading over the given GPUs of the sample; nullopt unless every one of them has
// it (a partial mean would say something about the job that is not known).
std::optional<double> MeanOver(const TelemetrySample& sample, const std::vector<int>& gpus,
                               std::optional<double> (*reading)(const GpuReading&)) {
  if (gpus.empty()) return std::nullopt;
  double sum = 0;
  for (int index : gpus) {
    std::optional<double> value;
    for (const GpuReading& g : sample.gpus) {
      if (g.index == index) value = reading(g);
    }
    if (!value) return std::nullopt;
    sum += *value;
  }
  return sum / static_cast<double>(gpus.size());
}

std::optional<double> Utilization(const GpuReading& g) { return g.utilization_pct; }

std::optional<double> MemoryUsedPct(const GpuReading& g) {
  if (!g.memory_used_bytes || !g.memory_total_bytes || *g.memory_total_bytes <= 0) {
    return std::nullopt;
  }
  return 100.0 * static_cast<double>(*g.memory_used_bytes) /
         static_cast<double>(*g.memory_total_bytes);
}

}  // namespace

MonitorService::MonitorService(MonitorOptions options, std::unique_ptr<TelemetrySource> source,
                               MonitorInputs inputs)
    : options_(std::move(options)),
      source_(std::move(source)),
      inputs_(std::move(inputs)),
      store_(options_.window),
      notifier_(options_.webhook),
      engine_(options_.rules) {}

MonitorService::~MonitorService() { Stop(); }

void MonitorService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MonitorService::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void MonitorService::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    Tick(absl::Now());
    lock.lock();
    cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.interval), [this] { return stop_; });
  }
}

void MonitorService::Tick(absl::Time now) {
  TelemetrySample sample = source_->Sample();
  sample.time = now;
  std::map<int64_t, JobGpus> job_gpus =
      inputs_.job_gpus ? inputs_.job_gpus() : std::map<int64_t, JobGpus>{};
  for (const auto& [job, held] : job_gpus) {
    for (int g : held.gpus) sample.gpu_jobs[g] = job;
  }
  RecordJobGpus(sample, job_gpus);
  // What each rule sees.
  std::map<std::string, std::map<std::string, AlertObservation>> seen;
  for (const AlertRule& rule : options_.rules) {
    auto& obs = seen[rule.name];
    switch (rule.kind) {
      case AlertKind::kGpuTemperatureAbove:
        for (const GpuReading& g : sample.gpus) {
          if (!g.temperature_c) continue;
          obs[absl::StrCat(sample.node, "/gpu ", g.index)] = {
              .active = *g.temperature_c > rule.threshold,
              .value = *g.temperature_c,
              .message = absl::StrFormat("GPU %d of %s at %.0f C (limit %.0f C)", g.index,
                                         sample.node, *g.temperature_c, rule.threshold)};
        }
        break;
      case AlertKind::kJobGpuIdleBelow:
        for (const auto& [job, held] : job_gpus) {
          std::optional<double> mean = MeanOver(sample, held.gpus, Utilization);
          if (!mean) continue;  // not available
          obs[absl::StrCat("job ", job)] = {
              .active = *mean < rule.threshold,
              .value = *mean,
              .message =
                  absl::StrFormat("job %d: its %d GPU(s) at %.0f%% utilisation (below %.0f%%)", job,
                                  held.gpus.size(), *mean, rule.threshold)};
        }
        break;
      case AlertKind::kJobFailed:
        if (inputs_.failed_jobs) obs = Active(inputs_.failed_jobs());
        break;
      case AlertKind::kNodeLost:
        if (inputs_.lost_nodes) obs = Active(inputs_.lost_nodes());
        break;
      case AlertKind::kTenantAtQuota:
        if (inputs_.tenants_at_quota) obs = Active(inputs_.tenants_at_quota());
        break;
    }
  }
  store_.Add(std::move(sample));
  std::vector<AlertEvent> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [rule, obs] : seen) {
      for (AlertEvent& e : engine_.Observe(rule, obs, now)) events.push_back(std::move(e));
    }
    for (const AlertEvent& e : events) {
      recent_.push_back(e);
      if (recent_.size() > 200) recent_.pop_front();
    }
  }
  for (const AlertEvent& e : events) {
    spdlog::info("alert {} {} for {}: {}", e.rule, e.state, e.key, e.message);
    notifier_.Send(e);
  }
}

void MonitorService::RecordJobGpus(const TelemetrySample& sample,
                                   const std::map<int64_t, JobGpus>& job_gpus) {
  if (options_.job_metrics == nullptr) return;
  const double unix_seconds = absl::ToDoubleSeconds(sample.time - absl::UnixEpoch());
  for (const auto& [job, held] : job_gpus) {
    if (!held.start_time) continue;
    MetricReport report{
        .step = std::max<int64_t>(0, absl::ToInt64Seconds(sample.time - *held.start_time)),
        .time = unix_seconds};
    if (auto util = MeanOver(sample, held.gpus, Utilization)) {
      report.values.push_back({.name = kJobGpuUtilizationMetric, .value = *util});
    }
    if (auto memory = MeanOver(sample, held.gpus, MemoryUsedPct)) {
      report.values.push_back({.name = kJobGpuMemoryUsedMetric, .value = *memory});
    }
    if (report.values.empty()) continue;
    absl::StatusOr<int64_t> written = options_.job_metrics->Append(job, held.attempt, {report});
    if (!written.ok() && !recording_failed_) {
      spdlog::warn("monitor: cannot record the GPU utilisation of job {}: {}", job,
                   written.status().ToString());
    }
    recording_failed_ = !written.ok();
  }
}

std::vector<AlertEvent> MonitorService::Firing() const {
  std::lock_guard<std::mutex> lock(mu_);
  return engine_.Firing();
}

std::vector<AlertEvent> MonitorService::Recent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {recent_.begin(), recent_.end()};
}

std::string MonitorService::Prometheus() const {
  size_t firing = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    firing = engine_.Firing().size();
  }
  std::string out;
  if (std::optional<TelemetrySample> latest = store_.Latest()) out = TelemetryPrometheus(*latest);
  WebhookStats stats = notifier_.Stats();
  absl::StrAppend(&out, "# HELP dlab_alerts_firing Alert incidents firing now.\n",
                  "# TYPE dlab_alerts_firing gauge\ndlab_alerts_firing ", firing, "\n",
                  "# HELP dlab_alert_webhooks_total Alert webhook deliveries by outcome.\n",
                  "# TYPE dlab_alert_webhooks_total counter\n",
                  "dlab_alert_webhooks_total{outcome=\"delivered\"} ", stats.delivered, "\n",
                  "dlab_alert_webhooks_total{outcome=\"failed\"} ", stats.failed, "\n");
  return out;
}

}  // namespace dlab
