#include "api/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dlab {

void Metrics::Histogram::Observe(double v) {
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (v <= kBuckets[i]) ++counts[i];
  }
  ++count;
  sum += v;
}

void Metrics::Histogram::Render(const std::string& name, const std::string& labels,
                                std::string* out) const {
  std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    absl::StrAppend(out, name, "_bucket{", labels, sep, "le=\"", absl::StrFormat("%g", kBuckets[i]),
                    "\"} ", counts[i], "\n");
  }
  absl::StrAppend(out, name, "_bucket{", labels, sep, "le=\"+Inf\"} ", count, "\n");
  absl::StrAppend(out, name, "_sum", labels.empty() ? "" : absl::StrCat("{", labels, "}"), " ",
                  absl::StrFormat("%.6f", sum), "\n");
  absl::StrAppend(out, name, "_count", labels.empty() ? "" : absl::StrCat("{", labels, "}"), " ",
                  count, "\n");
}

void Metrics::ObserveRequest(const std::string& method, int status, absl::Duration elapsed) {
  std::lock_guard lock(mu_);
  ++requests_[{method, status}];
  request_seconds_.Observe(absl::ToDoubleSeconds(elapsed));
}

void Metrics::ObserveSchedulingLatency(absl::Duration d) {
  std::lock_guard lock(mu_);
  scheduling_seconds_.Observe(absl::ToDoubleSeconds(d));
}

std::string Metrics::Render(const std::map<JobState, int64_t>& jobs_by_state) const {
  std::string out;
  out += "# HELP dlab_jobs Jobs by state.\n# TYPE dlab_jobs gauge\n";
  for (const auto& [state, n] : jobs_by_state) {
    absl::StrAppend(&out, "dlab_jobs{state=\"", std::string(JobStateName(state)), "\"} ", n, "\n");
  }
  std::lock_guard lock(mu_);
  out +=
      "# HELP dlab_scheduling_latency_seconds Time from submission to the first attempt running.\n"
      "# TYPE dlab_scheduling_latency_seconds histogram\n";
  scheduling_seconds_.Render("dlab_scheduling_latency_seconds", "", &out);
  out +=
      "# HELP dlab_http_requests_total HTTP requests by method and status code.\n"
      "# TYPE dlab_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    absl::StrAppend(&out, "dlab_http_requests_total{method=\"", key.first, "\",code=\"", key.second,
                    "\"} ", n, "\n");
  }
  out +=
      "# HELP dlab_http_request_duration_seconds Time to answer HTTP requests.\n"
      "# TYPE dlab_http_request_duration_seconds histogram\n";
  request_seconds_.Render("dlab_http_request_duration_seconds", "", &out);
  return out;
}

}  // namespace dlab
