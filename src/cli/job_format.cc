#include "cli/job_format.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/sparkline.h"
#include "cli/table.h"

namespace dlab {
namespace {

using nlohmann::json;
using table::Field;
using table::OneLine;
using table::RenderTable;
using table::Text;
using table::Truncate;

constexpr size_t kReasonColumnWidth = 48;
constexpr int kCancelledExitStatus = 130;

// A number compactly ("0.2500" is "0.25", 123456789.0 is "1.235e+08"); other scalars as Text.
std::string Number(const json& value) {
  if (!value.is_number_float()) return Text(value);
  return absl::StrFormat("%.4g", value.get<double>());
}

std::string ShellQuote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789@%_+=:,./-") == std::string::npos) {
    return arg;
  }
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string FormatCommand(const json& command) {
  if (!command.is_array()) return Text(command);
  std::vector<std::string> args;
  for (const json& arg : command) args.push_back(ShellQuote(Text(arg)));
  return absl::StrJoin(args, " ");
}

std::string FormatResources(const json& resources) {
  std::string out = absl::StrCat("cpus ", Text(resources, "cpus"), ", memory ",
                                 Text(resources, "memory"), ", gpus ", Text(resources, "gpus"));
  if (Field(resources, "gpu_type").is_string()) {
    absl::StrAppend(&out, " (", Text(resources, "gpu_type"), ")");
  }
  return out;
}

std::string FormatAllocation(const json& allocation) {
  if (!allocation.is_object()) return "-";
  return absl::StrCat("cpus ", Text(allocation, "cpus"), ", memory ", Text(allocation, "memory"),
                      ", gpus ", Text(allocation, "gpus"));
}

std::string FormatLabels(const json& labels) {
  if (!labels.is_object() || labels.empty()) return "-";
  std::vector<std::string> pairs;
  for (const auto& [key, value] : labels.items())
    pairs.push_back(absl::StrCat(key, "=", Text(value)));
  return absl::StrJoin(pairs, ", ");
}

std::string TimeWithAge(const json& time, absl::Time now) {
  if (!time.is_string()) return "-";
  return absl::StrCat(time.get<std::string>(), " (", FormatAge(time, now), " ago)");
}

std::string StateWithReason(const json& object) {
  std::string state = Text(object, "state");
  const json& reason = Field(object, "reason");
  if (reason.is_string() && !reason.get<std::string>().empty()) {
    absl::StrAppend(&state, " (", reason.get<std::string>(), ")");
  }
  return state;
}

void AppendField(std::string* out, absl::string_view name, absl::string_view value) {
  absl::StrAppend(out, name, ":");
  out->append(name.size() < 13 ? 13 - name.size() : 1, ' ');
  absl::StrAppend(out, value, "\n");
}

// "3", or with roles "3 (ps 1, worker 2)": the job's tasks per attempt.
std::string FormatTaskCount(const json& job) {
  const json& spec_tasks = Field(Field(job, "spec"), "tasks");
  std::string out = Text(job, "tasks");
  if (out == "-" && spec_tasks.is_number_integer()) out = Text(spec_tasks);
  if (!spec_tasks.is_object() || spec_tasks.empty()) return out;
  std::vector<std::string> roles;
  for (const auto& [role, group] : spec_tasks.items()) {
    roles.push_back(
        absl::StrCat(role, " ", group.is_object() ? Text(group, "count") : Text(group)));
  }
  return absl::StrCat(out, " (", absl::StrJoin(roles, ", "), ")");
}

// "user (counted against max_restarts)", "infrastructure (not counted ...)", or "-".
std::string FormatFailure(const json& attempt) {
  const json& counted = Field(attempt, "restart_counted");
  std::string out = Text(attempt, "failure");
  if (out.empty()) out = "-";
  if (counted == json(true)) {
    absl::StrAppend(&out, " (counted against max_restarts)");
  } else if (counted == json(false) && out != "-") {
    absl::StrAppend(&out, " (not counted against max_restarts)");
  }
  return out;
}

// "step 100, /data/jobs/7/checkpoints/step-100 (checkpoint 3)", or "-" for a fresh start.
std::string FormatResumedFrom(const json& attempt) {
  const json& checkpoint = Field(attempt, "resumed_from");
  if (!checkpoint.is_object()) return "-";
  std::string out = absl::StrCat("step ", Text(checkpoint, "step"), ", ", Text(checkpoint, "path"));
  if (!Field(checkpoint, "id").is_null()) {
    absl::StrAppend(&out, " (checkpoint ", Text(checkpoint, "id"), ")");
  }
  return out;
}

// Text, with "-" also for the empty string.
std::string NonEmptyText(const json& object, const char* key) {
  std::string text = Text(object, key);
  return text.empty() ? "-" : text;
}

// "worker/0", or "-" for the tasks of a plain `tasks: N` job.
std::string FormatRole(const json& task) {
  std::string role = NonEmptyText(task, "role");
  return role == "-" ? role : absl::StrCat(role, "/", Text(task, "role_index"));
}

// "3" for an exit code, "signal SIGKILL" for a signal, else "-".
std::string FormatTaskExit(const json& task) {
  const json& exit_code = Field(task, "exit_code");
  if (!exit_code.is_null()) return Text(exit_code);
  std::string signal = NonEmptyText(task, "signal");
  return signal == "-" ? signal : absl::StrCat("signal ", signal);
}

void AppendTasks(std::string* out, const json& tasks) {
  std::vector<std::vector<std::string>> rows = {{"RANK", "ROLE", "EXIT", "END"}};
  for (const json& task : tasks) {
    rows.push_back({Text(task, "rank"), FormatRole(task), FormatTaskExit(task),
                    NonEmptyText(task, "end_reason")});
  }
  absl::StrAppend(out, "    tasks:\n", RenderTable(rows, "      "));
}

void AppendAttempt(std::string* out, const json& attempt) {
  absl::StrAppend(out, "  Attempt ", Text(attempt, "attempt"), ": ", StateWithReason(attempt),
                  ", exit code ", Text(attempt, "exit_code"), "\n");
  absl::StrAppend(out, "    failure:    ", FormatFailure(attempt), "\n");
  absl::StrAppend(out, "    resumed:    ", FormatResumedFrom(attempt), "\n");
  absl::StrAppend(out, "    created:    ", Text(attempt, "create_time"), "\n");
  absl::StrAppend(out, "    started:    ", Text(attempt, "start_time"), "\n");
  absl::StrAppend(out, "    ended:      ", Text(attempt, "end_time"), "\n");
  absl::StrAppend(out, "    allocation: ", FormatAllocation(Field(attempt, "allocation")), "\n");
  const json& limits = Field(attempt, "limits");
  if (limits.is_array() && !limits.empty()) {
    absl::StrAppend(out, "    limits:\n");
    for (const json& line : limits) absl::StrAppend(out, "      ", Text(line), "\n");
  }
  const json& tasks = Field(attempt, "tasks");
  if (tasks.is_array() && tasks.size() > 1) AppendTasks(out, tasks);
}

// The values of a series' [step, time, value] points; NaN where a value is missing.
std::vector<double> PointValues(const json& points) {
  std::vector<double> values;
  if (!points.is_array()) return values;
  for (const json& point : points) {
    bool ok = point.is_array() && point.size() >= 3 && point[2].is_number();
    values.push_back(ok ? point[2].get<double>() : std::numeric_limits<double>::quiet_NaN());
  }
  return values;
}

// The series' latest {step, time, value}, else its last point as one, else null.
json LatestPoint(const json& series) {
  const json& latest = Field(series, "latest");
  if (latest.is_object()) return latest;
  const json& points = Field(series, "points");
  if (!points.is_array() || points.empty() || !points.back().is_array() ||
      points.back().size() < 3) {
    return json();
  }
  const json& last = points.back();
  return json{{"step", last[0]}, {"time", last[1]}, {"value", last[2]}};
}

// "acc=0.91, loss=0.3", or "-".
std::string FormatMetricValues(const json& metrics) {
  if (!metrics.is_object() || metrics.empty()) return "-";
  std::vector<std::string> pairs;
  for (const auto& [name, value] : metrics.items()) {
    pairs.push_back(absl::StrCat(name, "=", Number(value)));
  }
  return absl::StrJoin(pairs, ", ");
}

std::optional<absl::Time> ParseRfc3339(const json& rfc3339_time) {
  if (!rfc3339_time.is_string()) return std::nullopt;
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, rfc3339_time.get<std::string>(), &t, &error)) {
    return std::nullopt;
  }
  return t;
}

// "42s", "5m", "3h" (under two days), "2d"; negative durations count as 0s.
std::string CompactDuration(absl::Duration d) {
  int64_t seconds = std::max<int64_t>(0, absl::ToInt64Seconds(d));
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600) return absl::StrCat(seconds / 60, "m");
  if (seconds < 48 * 3600) return absl::StrCat(seconds / 3600, "h");
  return absl::StrCat(seconds / 86400, "d");
}

}  // namespace

std::string FormatAge(const json& rfc3339_time, absl::Time now) {
  std::optional<absl::Time> then = ParseRfc3339(rfc3339_time);
  if (!then) return "-";
  return CompactDuration(now - *then);
}

std::string FormatTimeUntil(const json& rfc3339_time, absl::Time now) {
  std::optional<absl::Time> then = ParseRfc3339(rfc3339_time);
  if (!then) return "-";
  if (*then - now < absl::Seconds(1)) return "now";
  return absl::StrCat("in ", CompactDuration(*then - now));
}

std::string FormatJobTable(const json& jobs, absl::Time now) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "OWNER", "STATE", "AGE", "GPUS", "REASON"}};
  if (jobs.is_array()) {
    for (const json& job : jobs) {
      rows.push_back({Text(job, "id"), Text(job, "name"), Text(job, "owner"), Text(job, "state"),
                      FormatAge(Field(job, "submit_time"), now),
                      Text(Field(Field(job, "spec"), "resources"), "gpus"),
                      Truncate(OneLine(Text(job, "reason")), kReasonColumnWidth)});
    }
  }
  return RenderTable(rows);
}

std::string FormatQueueTable(const json& jobs, absl::Time now) {
  std::vector<std::vector<std::string>> rows = {
      {"POS", "ID", "NAME", "OWNER", "PRIO", "GPUS", "WAITING", "EST. START", "REASON"}};
  if (jobs.is_array()) {
    for (const json& job : jobs) {
      rows.push_back({Text(job, "position"), Text(job, "id"), Text(job, "name"), Text(job, "owner"),
                      Text(job, "priority"), Text(job, "gpus"),
                      FormatAge(Field(job, "submit_time"), now),
                      FormatTimeUntil(Field(job, "estimated_start"), now),
                      Truncate(OneLine(Text(job, "reason")), kReasonColumnWidth)});
    }
  }
  return RenderTable(rows);
}

std::string FormatJobDescription(const json& job, absl::Time now) {
  const json& spec = Field(job, "spec");
  std::string out;
  AppendField(&out, "ID", Text(job, "id"));
  AppendField(&out, "Name", Text(job, "name"));
  AppendField(&out, "Tenant", Text(job, "tenant"));
  AppendField(&out, "Owner", Text(job, "owner"));
  AppendField(&out, "State", StateWithReason(job));
  if (Field(job, "cancel_requested") == json(true)) AppendField(&out, "Cancel", "requested");
  AppendField(&out, "Exit code", Text(job, "exit_code"));
  AppendField(&out, "Submitted", TimeWithAge(Field(job, "submit_time"), now));
  AppendField(&out, "Started", TimeWithAge(Field(job, "start_time"), now));
  AppendField(&out, "Ended", TimeWithAge(Field(job, "end_time"), now));
  AppendField(&out, "Command", FormatCommand(Field(spec, "command")));
  AppendField(&out, "Workdir", Text(spec, "workdir"));
  std::string resources = FormatResources(Field(spec, "resources"));
  const json& tasks = Field(job, "tasks");
  if (tasks.is_number_integer() && tasks.get<int64_t>() > 1)
    absl::StrAppend(&resources, " per task");
  AppendField(&out, "Resources", resources);
  AppendField(&out, "Tasks", FormatTaskCount(job));
  AppendField(&out, "Priority", Text(job, "priority"));
  AppendField(&out, "Max runtime", Text(spec, "max_runtime"));
  AppendField(&out, "Max restarts", Text(spec, "max_restarts"));
  AppendField(&out, "Labels", FormatLabels(Field(job, "labels")));
  const json& snapshot = Field(job, "snapshot");
  AppendField(&out, "Snapshot",
              snapshot.is_string() && !snapshot.get<std::string>().empty() ? Text(snapshot) : "-");
  const json& attempts = Field(job, "attempt_list");
  AppendField(&out, "Attempts", Text(job, "attempts"));
  if (attempts.is_array()) {
    for (const json& attempt : attempts) AppendAttempt(&out, attempt);
  }
  return out;
}

std::string FormatMetricTable(const json& series_list) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "STEP", "VALUE", "POINTS", "TREND"}};
  if (series_list.is_array()) {
    for (const json& series : series_list) {
      const json latest = LatestPoint(series);
      const json& points = Field(series, "points");
      json count = Field(series, "count");
      if (count.is_null() && points.is_array()) count = points.size();
      rows.push_back({Text(series, "name"), Text(latest, "step"), Number(Field(latest, "value")),
                      Text(count), Sparkline(PointValues(points), kMetricTrendWidth)});
    }
  }
  return RenderTable(rows);
}

std::string FormatCheckpointTable(const json& checkpoints) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "ATTEMPT", "STEP", "TIME", "PATH", "METRICS"}};
  if (checkpoints.is_array()) {
    for (const json& checkpoint : checkpoints) {
      rows.push_back({Text(checkpoint, "id"), Text(checkpoint, "attempt"), Text(checkpoint, "step"),
                      Text(checkpoint, "time"), Text(checkpoint, "path"),
                      FormatMetricValues(Field(checkpoint, "metrics"))});
    }
  }
  return RenderTable(rows);
}

std::string FormatEventTable(const json& events) {
  std::vector<std::vector<std::string>> rows = {{"TIME", "FROM", "TO", "REASON"}};
  if (events.is_array()) {
    for (const json& event : events) {
      rows.push_back({Text(event, "time"), Text(event, "from"), Text(event, "to"),
                      OneLine(Text(event, "reason"))});
    }
  }
  return RenderTable(rows);
}

int ExitStatusForJob(const std::string& state, const json& exit_code) {
  if (state == "SUCCEEDED") return 0;
  if (state == "CANCELLED") return kCancelledExitStatus;
  if (state == "FAILED" && exit_code.is_number_integer()) {
    int64_t code = exit_code.get<int64_t>();
    if (code > 0 && code < 256) return static_cast<int>(code);
  }
  return 1;
}

}  // namespace dlab
