// A GPU-cluster job trace as read from CSV (Philly, Alibaba cluster-trace-gpu-v2023, or a generic
// job_id,submit_s,num_gpus,duration_s file; the format is told by the header), and the choice of
// which of its jobs to replay (--jobs FIRST:COUNT or --window FROM_S:TO_S). Pure functions over
// values; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dlab::sim {

enum class TraceFormat { kGeneric, kPhilly, kAlibabaV2023 };
std::string_view TraceFormatName(TraceFormat format);  // "generic", "philly", "alibaba-v2023"

struct TraceJob {
  std::string id;  // as in the trace
  double submit_s = 0;
  int gpus = 0;  // whole GPUs: a share of one GPU (Alibaba's gpu_milli < 1000) counts as 1
  bool fractional_gpu = false;       // asked for part of one GPU and was rounded up
  std::optional<double> duration_s;  // unset: none in the trace (Alibaba's Pending pods)
  std::string gpu_type;              // empty: any
  std::string tenant;                // vc (Philly) or tenant (generic); "default" when none
  int priority = 0;  // generic: priority; Alibaba: qos Guaranteed 3, LS 2, Burstable 1, BE 0
  std::optional<int64_t> cpu_millis;    // for the whole job, when the trace has it
  std::optional<int64_t> memory_bytes;  // for the whole job, when the trace has it
};

struct Trace {
  TraceFormat format = TraceFormat::kGeneric;
  std::vector<TraceJob> jobs;  // in submit order; rows with equal submit times in file order
};

// InvalidArgument "SOURCE:LINE: ..." for a row that does not parse (naming the column), a header
// without job_id, submit_s, num_gpus or duration_s, or a node file given as a trace.
absl::StatusOr<Trace> ParseTrace(std::string_view text, std::string source);
// ParseTrace over the file's content; NotFound when it does not exist.
absl::StatusOr<Trace> LoadTrace(const std::string& path);

// Which jobs to replay: all, FIRST:COUNT in submit order, or those submitted in [FROM_S, TO_S).
struct JobSelection {
  std::optional<size_t> first;  // with count
  size_t count = 0;
  std::optional<double> from_s;  // with to_s
  double to_s = 0;
};

// "FIRST:COUNT" with FIRST >= 0, COUNT >= 1; InvalidArgument quoting the text otherwise.
absl::StatusOr<JobSelection> ParseJobRange(std::string_view text);
// "FROM_S:TO_S" with 0 <= FROM_S < TO_S; InvalidArgument quoting the text otherwise.
absl::StatusOr<JobSelection> ParseWindow(std::string_view text);

// The index in trace.jobs of the first selected job (0 for all; trace.jobs.size() when a range
// starts past the end or no job is submitted from FROM_S on).
size_t FirstSelected(const Trace& trace, const JobSelection& selection);

// The selected jobs in submit order (a range past the end is cut short).
std::vector<TraceJob> SelectJobs(const Trace& trace, const JobSelection& selection);

}  // namespace dlab::sim
