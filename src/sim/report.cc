#include "sim/report.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace dlab::sim {
namespace {

double Average(double sum, int64_t n) { return n == 0 ? 0 : sum / static_cast<double>(n); }

// Fairness over the tenants that had GPUs queued at some time.
void SummarizeFairness(const std::vector<TenantFairness>& tenants, Summary* s) {
  if (tenants.size() <= 1) return;
  std::optional<double> low, high;
  for (const TenantFairness& t : tenants) {
    s->fairness_min_busy = std::min(s->fairness_min_busy, t.busy_ratio);
    if (t.queued_s <= 0) continue;
    low = std::min(low.value_or(t.ratio), t.ratio);
    high = std::max(high.value_or(t.ratio), t.ratio);
    s->fairness_min_one_job = std::min(s->fairness_min_one_job, t.ratio_one_job);
  }
  if (!low) return;
  s->fairness_min = *low;
  s->fairness_max_over_min = *low > 0 ? std::optional(*high / *low) : std::nullopt;
}

std::string Seconds(double s) {
  if (s < 3600) return absl::StrFormat("%.1f s", s);
  if (s < 86400) return absl::StrFormat("%.1f s (%.2f h)", s, s / 3600);
  return absl::StrFormat("%.1f s (%.2f d)", s, s / 86400);
}

// ▁▂▃▄▅▆▇█ by value in [0, 1].
std::string Sparkline(const std::vector<double>& values) {
  static const char* kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::string out;
  for (double v : values) {
    int level = static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * 7));
    out += kBars[level];
  }
  return out;
}

nlohmann::json TenantFairnessJson(const Workload& workload, const SimResult& result) {
  nlohmann::json out = nlohmann::json::object();
  for (size_t i = 0; i < result.tenants.size() && i < workload.tenants.size(); ++i) {
    const TenantFairness& t = result.tenants[i];
    out[workload.tenants[i]] = {{"queued_s", t.queued_s},
                                {"ratio", t.ratio},
                                {"ratio_one_job", t.ratio_one_job},
                                {"busy_ratio", t.busy_ratio}};
  }
  return out;
}

nlohmann::json WeightsJson(const std::vector<std::pair<std::string, double>>& weights) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [tenant, weight] : weights) out[tenant] = weight;
  return out;
}

}  // namespace

double NearestRank(const std::vector<double>& sorted, double percent) {
  if (sorted.empty()) return 0;
  double rank = std::ceil(percent / 100.0 * static_cast<double>(sorted.size()));
  size_t index = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(sorted.size())));
  return sorted[index - 1];
}

Summary Summarize(const Workload& workload, const SimResult& result, int cluster_gpus) {
  Summary s{.jobs = static_cast<int64_t>(workload.jobs.size()),
            .makespan_s = result.makespan_s,
            .preemptions = result.preemptions};
  std::vector<double> jct;
  double queue_sum = 0;
  int64_t started = 0;
  for (size_t i = 0; i < result.jobs.size(); ++i) {
    const JobOutcome& job = result.jobs[i];
    double submit = workload.jobs[i].request.submit_s;
    if (job.first_start_s) {
      queue_sum += *job.first_start_s - submit;
      ++started;
    }
    if (job.end_s) jct.push_back(*job.end_s - submit);
  }
  s.finished = static_cast<int64_t>(jct.size());
  double jct_sum = 0;
  for (double v : jct) jct_sum += v;
  std::sort(jct.begin(), jct.end());
  s.avg_jct_s = Average(jct_sum, s.finished);
  s.p50_jct_s = NearestRank(jct, 50);
  s.p99_jct_s = NearestRank(jct, 99);
  s.avg_queue_s = Average(queue_sum, started);
  double capacity = static_cast<double>(cluster_gpus) * result.makespan_s;
  s.gpu_utilization = capacity > 0 ? result.busy_gpu_s / capacity : 0;
  SummarizeFairness(result.tenants, &s);
  return s;
}

nlohmann::json ReportJson(const SimReport& report) {
  const Workload& workload = *report.workload;
  const SimResult& result = *report.result;
  Summary s = Summarize(workload, result, report.cluster_gpus);
  nlohmann::json fairness_ratio = nullptr;
  if (s.fairness_max_over_min) fairness_ratio = *s.fairness_max_over_min;
  return {
      {"trace", report.trace},
      {"trace_format", std::string(TraceFormatName(report.format))},
      {"policy", report.policy},
      {"params", report.params},
      {"weights", WeightsJson(report.weights)},
      {"restart_cost_s", report.restart_cost_s},
      {"fairness_grace_s", report.fairness_grace_s},
      {"cluster_nodes", report.cluster_nodes},
      {"cluster_gpus", report.cluster_gpus},
      {"jobs", s.jobs},
      {"finished", s.finished},
      {"unfinished", result.unfinished},
      {"skipped", workload.skipped},
      {"first_skipped", workload.first_skipped},
      {"no_duration", workload.no_duration},
      {"fractional_gpu", workload.fractional_gpu},
      {"tenants", workload.tenants.size()},
      {"avg_jct_s", s.avg_jct_s},
      {"p50_jct_s", s.p50_jct_s},
      {"p99_jct_s", s.p99_jct_s},
      {"avg_queue_s", s.avg_queue_s},
      {"makespan_s", s.makespan_s},
      {"gpu_utilization", s.gpu_utilization},
      {"preemptions", s.preemptions},
      {"fairness_min", s.fairness_min},
      {"fairness_max_over_min", fairness_ratio},
      {"fairness_min_one_job", s.fairness_min_one_job},
      {"fairness_min_busy", s.fairness_min_busy},
      {"tenant_fairness", TenantFairnessJson(workload, result)},
      {"utilization_over_time", result.utilization_over_time},
      {"instants", result.instants},
      {"cycles", result.cycles},
      {"sim_wall_s", report.sim_wall_s},
      {"scheduler_wall_s", result.scheduler_wall_s},
  };
}

std::string ReportText(const SimReport& report) {
  const Workload& workload = *report.workload;
  const SimResult& result = *report.result;
  Summary s = Summarize(workload, result, report.cluster_gpus);
  std::vector<std::string> params;
  for (const auto& [key, value] : report.params) params.push_back(absl::StrCat(key, "=", value));
  if (!report.weights.empty()) {
    params.push_back(absl::StrCat(
        "weights=", absl::StrJoin(report.weights, ",", [](std::string* out, const auto& w) {
          absl::StrAppend(out, w.first, ":", w.second);
        })));
  }
  std::string out = absl::StrFormat(
      "trace             %s (%s)\n"
      "cluster           %d nodes, %d GPUs\n"
      "policy            %s%s (restart cost %.0f s)\n"
      "jobs              %d simulated, %d finished, %d never started\n"
      "left out          %d could never run on this cluster, %d without a duration\n",
      report.trace, std::string(TraceFormatName(report.format)), report.cluster_nodes,
      report.cluster_gpus, report.policy,
      params.empty() ? "" : absl::StrCat(" ", absl::StrJoin(params, " ")), report.restart_cost_s,
      s.jobs, s.finished, result.unfinished, workload.skipped, workload.no_duration);
  if (!workload.first_skipped.empty()) {
    absl::StrAppend(&out, "                  first: ", workload.first_skipped, "\n");
  }
  if (workload.fractional_gpu > 0) {
    absl::StrAppend(&out, "                  ", workload.fractional_gpu,
                    " asked for a share of one GPU and got a whole one\n");
  }
  std::string ratio = s.fairness_max_over_min ? absl::StrFormat("%.3g", *s.fairness_max_over_min)
                                              : std::string("inf");
  absl::StrAppend(
      &out, "JCT               avg ", Seconds(s.avg_jct_s), ", p50 ", Seconds(s.p50_jct_s),
      ", p99 ", Seconds(s.p99_jct_s), "\n", "queueing          avg ", Seconds(s.avg_queue_s), "\n",
      "makespan          ", Seconds(s.makespan_s), "\n",
      absl::StrFormat("GPU utilization   %.1f%%  %s\n", 100 * s.gpu_utilization,
                      Sparkline(result.utilization_over_time)),
      "preemptions       ", s.preemptions, "\n",
      absl::StrFormat("fairness          min %.3g, max/min %s (%d tenants); fair up to one job "
                      "min %.3g; over busy time min %.3g\n",
                      s.fairness_min, ratio, workload.tenants.size(), s.fairness_min_one_job,
                      s.fairness_min_busy),
      absl::StrFormat("wall time         %.2f s (%.2f s in the scheduler, %d cycles at %d "
                      "instants)\n",
                      report.sim_wall_s, result.scheduler_wall_s, result.cycles, result.instants));
  return out;
}

namespace {

// The shortest text without an exponent that reads back as the same double (absl::StrCat
// keeps only 6 digits: 2240194 became 2.24019e+06).
std::string Exact(double v) {
  char buf[400];  // the largest finite double takes 309 digits
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  if (ec != std::errc()) return absl::StrCat(v);  // inf or nan: never in a simulation
  return std::string(buf, end);
}

std::string CsvSeconds(std::optional<double> s) { return s ? Exact(*s) : ""; }

}  // namespace

std::string PerJobCsv(const Workload& workload, const SimResult& result) {
  std::string out =
      "job_id,tenant,gpus,priority,submit_s,duration_s,start_s,end_s,jct_s,queue_s,"
      "preemptions\n";
  for (size_t i = 0; i < workload.jobs.size() && i < result.jobs.size(); ++i) {
    const SimJob& job = workload.jobs[i];
    const JobOutcome& o = result.jobs[i];
    size_t tenant = static_cast<size_t>(job.request.tenant_id - 1);
    double submit = job.request.submit_s;
    std::optional<double> jct, queue;
    if (o.end_s) jct = *o.end_s - submit;
    if (o.first_start_s) queue = *o.first_start_s - submit;
    absl::StrAppend(&out, job.trace_id, ",",
                    tenant < workload.tenants.size() ? workload.tenants[tenant] : "", ",", job.gpus,
                    ",", job.request.priority, ",", Exact(submit), ",", Exact(job.duration_s), ",",
                    CsvSeconds(o.first_start_s), ",", CsvSeconds(o.end_s), ",", CsvSeconds(jct),
                    ",", CsvSeconds(queue), ",", o.preemptions, "\n");
  }
  return out;
}

}  // namespace dlab::sim
