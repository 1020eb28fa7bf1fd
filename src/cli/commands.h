// The `dlab` job subcommands (run, ls, queue, describe, logs, metrics, checkpoints, cancel,
// events), each a function over an HttpClient that writes what the user asked for to `out`.
// Failures come back as Status values; the caller prints them. Not thread-safe: one command at a
// time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/command_support.h"

namespace dlab {

struct RunOptions {
  std::string spec_file;
  std::optional<std::string> code_dir;  // default: the directory that holds spec_file
  bool upload_code = true;              // false: submit without a snapshot (--no-code)
  bool follow = false;
  OutputFormat format = OutputFormat::kText;
};

// Submits a job (packing and uploading its code first when needed) and returns the exit status:
// 0, or with `follow` the job's (see ExitStatusForJob).
absl::StatusOr<int> RunJob(const CommandContext& ctx, const RunOptions& options);

struct ListOptions {
  std::vector<std::string> states;
  std::vector<std::string> labels;  // "key=value"
  int limit = 50;
  OutputFormat format = OutputFormat::kText;
};
absl::Status ListJobs(const CommandContext& ctx, const ListOptions& options);

// The tenant's queued jobs in scheduling order, with their position in the whole queue.
absl::Status ShowQueue(const CommandContext& ctx, const FormatOptions& options);

struct JobOptions {
  int64_t job_id = 0;
  OutputFormat format = OutputFormat::kText;
};
absl::Status DescribeJob(const CommandContext& ctx, const JobOptions& options);
absl::Status CancelJob(const CommandContext& ctx, const JobOptions& options);
absl::Status ShowEvents(const CommandContext& ctx, const JobOptions& options);

struct LogsOptions {
  int64_t job_id = 0;
  bool follow = false;
  std::optional<int64_t> tail;
  std::optional<int64_t> attempt;
  std::optional<int64_t> task;  // rank; unset: all tasks merged, lines prefixed "[rank N] "
};
absl::Status ShowLogs(const CommandContext& ctx, const LogsOptions& options);

struct MetricsOptions {
  int64_t job_id = 0;
  std::vector<std::string> names;  // empty: every metric
  OutputFormat format = OutputFormat::kText;
};
// One row per metric (latest step and value, points, a sparkline), or the server's reply.
absl::Status ShowMetrics(const CommandContext& ctx, const MetricsOptions& options);

// The job's checkpoints, oldest first.
absl::Status ShowCheckpoints(const CommandContext& ctx, const JobOptions& options);

}  // namespace dlab
