#include "sim/trace.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "sim/csv.h"

namespace dlab::sim {
namespace {

// Where each known column is in the header.
struct Columns {
  size_t job_id = 0, submit_s = 0, num_gpus = 0, duration_s = 0;
  std::optional<size_t> gpu_type, tenant, priority, qos, gpu_milli, cpu_milli, memory_mib;
  bool pending_pods = false;  // Alibaba's: a pod without a duration is left out and counted
};

TraceFormat FormatOf(const CsvFile& file) {
  if (file.Column("qos") && file.Column("gpu_milli")) return TraceFormat::kAlibabaV2023;
  if (file.Column("vc")) return TraceFormat::kPhilly;
  return TraceFormat::kGeneric;
}

absl::StatusOr<Columns> FindColumns(const CsvFile& file) {
  if (file.Column("sn") && file.Column("model")) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.source, ":1: this is a node file (sn,...,model), not a trace; pass it to --cluster"));
  }
  Columns c;
  for (auto [name, index] : {std::pair{"job_id", &c.job_id},
                             {"submit_s", &c.submit_s},
                             {"num_gpus", &c.num_gpus},
                             {"duration_s", &c.duration_s}}) {
    auto column = file.Column(name);
    if (!column) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.source, ":1: no column ", name,
                       " (a trace has at least job_id,submit_s,num_gpus,duration_s)"));
    }
    *index = *column;
  }
  c.gpu_type = file.Column("gpu_type");
  c.tenant = file.Column("vc") ? file.Column("vc") : file.Column("tenant");
  c.priority = file.Column("priority");
  c.qos = file.Column("qos");
  c.gpu_milli = file.Column("gpu_milli");
  c.cpu_milli = file.Column("cpu_milli");
  c.memory_mib = file.Column("memory_mib");
  c.pending_pods = FormatOf(file) == TraceFormat::kAlibabaV2023;
  return c;
}

// A whole number that is at least 0, or the error naming the line and column.
absl::StatusOr<int64_t> CountField(const CsvFile& file, const CsvLine& line, size_t column) {
  absl::StatusOr<int64_t> n = IntField(file, line, column);
  if (n.ok() && *n < 0) {
    return file.Error(line, absl::StrCat(file.header[column], ": must be 0 or more, got ", *n));
  }
  return n;
}

absl::StatusOr<int> QosPriority(const CsvFile& file, const CsvLine& line, size_t column) {
  static const auto* kPriority =
      new std::map<std::string, int>{{"Guaranteed", 3}, {"LS", 2}, {"Burstable", 1}, {"BE", 0}};
  auto it = kPriority->find(line.fields[column]);
  if (it != kPriority->end()) return it->second;
  return file.Error(line, absl::StrCat("qos: expected Guaranteed, LS, Burstable or BE, got '",
                                       line.fields[column], "'"));
}

// The count in an optional column; unset when the trace has no such column or the field is
// empty.
absl::StatusOr<std::optional<int64_t>> OptionalCount(const CsvFile& file, const CsvLine& line,
                                                     std::optional<size_t> column) {
  if (!column || line.fields[*column].empty()) return std::nullopt;
  absl::StatusOr<int64_t> n = CountField(file, line, *column);
  if (!n.ok()) return n.status();
  return *n;
}

// The GPUs asked for, whole: gpu_milli is per GPU; a share of one GPU is rounded up to one.
absl::Status ReadGpus(const CsvFile& file, const CsvLine& line, const Columns& c, TraceJob* job) {
  absl::StatusOr<int64_t> gpus = CountField(file, line, c.num_gpus);
  if (!gpus.ok()) return gpus.status();
  job->gpus = static_cast<int>(std::min<int64_t>(*gpus, 1 << 20));
  absl::StatusOr<std::optional<int64_t>> milli = OptionalCount(file, line, c.gpu_milli);
  if (!milli.ok()) return milli.status();
  if (milli->value_or(0) > 1000) {
    return file.Error(line, absl::StrCat("gpu_milli: must be at most 1000, got ", **milli));
  }
  if (milli->value_or(0) > 0 && **milli < 1000) {
    job->fractional_gpu = true;
    job->gpus = std::max(job->gpus, 1);
  }
  return absl::OkStatus();
}

absl::Status ReadResources(const CsvFile& file, const CsvLine& line, const Columns& c,
                           TraceJob* job) {
  absl::StatusOr<std::optional<int64_t>> cpu = OptionalCount(file, line, c.cpu_milli);
  if (!cpu.ok()) return cpu.status();
  absl::StatusOr<std::optional<int64_t>> mib = OptionalCount(file, line, c.memory_mib);
  if (!mib.ok()) return mib.status();
  job->cpu_millis = *cpu;
  if (*mib) job->memory_bytes = std::min<int64_t>(**mib, int64_t{1} << 40) << 20;
  return absl::OkStatus();
}

absl::Status ReadPriority(const CsvFile& file, const CsvLine& line, const Columns& c,
                          TraceJob* job) {
  if (c.qos && !line.fields[*c.qos].empty()) {
    absl::StatusOr<int> priority = QosPriority(file, line, *c.qos);
    if (!priority.ok()) return priority.status();
    job->priority = *priority;
  } else if (c.priority && !line.fields[*c.priority].empty()) {
    absl::StatusOr<int64_t> priority = IntField(file, line, *c.priority);
    if (!priority.ok()) return priority.status();
    job->priority = static_cast<int>(std::clamp<int64_t>(*priority, -1000000, 1000000));
  }
  return absl::OkStatus();
}

absl::StatusOr<TraceJob> ReadJob(const CsvFile& file, const CsvLine& line, const Columns& c) {
  TraceJob job{.id = line.fields[c.job_id]};
  if (job.id.empty()) return file.Error(line, "job_id: empty");
  absl::StatusOr<double> submit = NumberField(file, line, c.submit_s);
  if (!submit.ok()) return submit.status();
  if (*submit < 0) {
    return file.Error(line, absl::StrCat("submit_s: must be 0 or more, got ", *submit));
  }
  job.submit_s = *submit;
  if (line.fields[c.duration_s].empty() && !c.pending_pods) {
    return file.Error(line, "duration_s: empty (every job of a trace needs its run time)");
  }
  if (!line.fields[c.duration_s].empty()) {
    absl::StatusOr<double> duration = NumberField(file, line, c.duration_s);
    if (!duration.ok()) return duration.status();
    if (*duration < 0) {
      return file.Error(line, absl::StrCat("duration_s: must be 0 or more, got ", *duration));
    }
    job.duration_s = *duration;
  }
  if (c.gpu_type) job.gpu_type = line.fields[*c.gpu_type];
  job.tenant = c.tenant && !line.fields[*c.tenant].empty() ? line.fields[*c.tenant] : "default";
  for (auto read : {ReadGpus, ReadResources, ReadPriority}) {
    if (absl::Status s = read(file, line, c, &job); !s.ok()) return s;
  }
  return job;
}

template <typename T>
bool ParseWhole(std::string_view text, T* value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// "A:B" split at the colon; false when there is none.
bool SplitPair(std::string_view text, std::string_view* a, std::string_view* b) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  *a = text.substr(0, colon);
  *b = text.substr(colon + 1);
  return true;
}

// For lower_bound over jobs in submit order.
bool SubmittedBefore(const TraceJob& job, double t) { return job.submit_s < t; }

}  // namespace

std::string_view TraceFormatName(TraceFormat format) {
  switch (format) {
    case TraceFormat::kPhilly:
      return "philly";
    case TraceFormat::kAlibabaV2023:
      return "alibaba-v2023";
    case TraceFormat::kGeneric:
      break;
  }
  return "generic";
}

absl::StatusOr<Trace> ParseTrace(std::string_view text, std::string source) {
  absl::StatusOr<CsvFile> file = ParseCsv(text, std::move(source));
  if (!file.ok()) return file.status();
  absl::StatusOr<Columns> columns = FindColumns(*file);
  if (!columns.ok()) return columns.status();
  Trace trace{.format = FormatOf(*file)};
  trace.jobs.reserve(file->lines.size());
  std::unordered_map<std::string, int> line_of;  // job_id -> the line that has it
  line_of.reserve(file->lines.size());
  for (const CsvLine& line : file->lines) {
    absl::StatusOr<TraceJob> job = ReadJob(*file, line, *columns);
    if (!job.ok()) return job.status();
    auto [seen, added] = line_of.emplace(job->id, line.number);
    if (!added) {
      return file->Error(
          line, absl::StrCat("job_id: '", job->id, "' again (first on line ", seen->second, ")"));
    }
    trace.jobs.push_back(*std::move(job));
  }
  std::stable_sort(trace.jobs.begin(), trace.jobs.end(),
                   [](const TraceJob& a, const TraceJob& b) { return a.submit_s < b.submit_s; });
  return trace;
}

absl::StatusOr<Trace> LoadTrace(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseTrace(*text, path);
}

absl::StatusOr<JobSelection> ParseJobRange(std::string_view text) {
  std::string_view first, count;
  JobSelection selection{.first = 0};
  if (SplitPair(text, &first, &count) && ParseWhole(first, &*selection.first) &&
      ParseWhole(count, &selection.count) && selection.count > 0) {
    return selection;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--jobs: expected FIRST:COUNT (whole numbers, COUNT at least 1), got '",
                   std::string(text), "'"));
}

absl::StatusOr<JobSelection> ParseWindow(std::string_view text) {
  std::string_view from, to;
  JobSelection selection{.from_s = 0};
  if (SplitPair(text, &from, &to) && ParseWhole(from, &*selection.from_s) &&
      ParseWhole(to, &selection.to_s) && std::isfinite(selection.to_s) && *selection.from_s >= 0 &&
      *selection.from_s < selection.to_s) {
    return selection;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--window: expected FROM_S:TO_S (seconds of the trace, FROM_S < TO_S), got '",
                   std::string(text), "'"));
}

size_t FirstSelected(const Trace& trace, const JobSelection& selection) {
  const std::vector<TraceJob>& all = trace.jobs;
  if (selection.first) return std::min(*selection.first, all.size());
  if (selection.from_s) {
    return std::lower_bound(all.begin(), all.end(), *selection.from_s, SubmittedBefore) -
           all.begin();
  }
  return 0;
}

std::vector<TraceJob> SelectJobs(const Trace& trace, const JobSelection& selection) {
  const std::vector<TraceJob>& all = trace.jobs;
  auto first = all.begin() + FirstSelected(trace, selection);
  if (selection.first) {
    return std::vector<TraceJob>(first,
                                 first + std::min<size_t>(selection.count, all.end() - first));
  }
  if (selection.from_s) {
    return std::vector<TraceJob>(
        first, std::lower_bound(first, all.end(), selection.to_s, SubmittedBefore));
  }
  return all;
}

}  // namespace dlab::sim
