// How the CLI shows API objects to people: the job tables of `dlab ls` and `dlab queue`, the
// block of `dlab describe`, the tables of `dlab events`, `dlab metrics` and `dlab checkpoints`.
// Works on the JSON the REST API returns and tolerates missing fields (older servers). Pure
// functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace dlab {

// Columns ID NAME OWNER STATE AGE GPUS REASON, one row per job; AGE is counted back from `now`.
std::string FormatJobTable(const nlohmann::json& jobs, absl::Time now);

// Columns POS ID NAME OWNER PRIO GPUS WAITING EST. START REASON, one row per entry of a queue
// reply's "jobs": WAITING is how long ago it was submitted, EST. START when it may start ("in 5m",
// "now" when that time has come, "-" when unknown); both counted from `now`.
std::string FormatQueueTable(const nlohmann::json& jobs, absl::Time now);

// id, name, tenant and owner, state and reason, exit code, times, command, resources, task count,
// labels, and each attempt with its failure class (and whether it counted against max_restarts),
// the checkpoint it resumed from, its allocation, the lines saying which limits were (or could not
// be) enforced, and for several tasks one row per task: rank, role/index, exit, end reason.
std::string FormatJobDescription(const nlohmann::json& job, absl::Time now);

// How many characters wide the TREND sparkline of FormatMetricTable is at most; also the
// max_points `dlab metrics` asks for.
inline constexpr size_t kMetricTrendWidth = 32;

// Columns NAME STEP VALUE POINTS TREND, one row per series of a metrics reply's "series": the
// latest step and value, how many points the server holds, and a sparkline of the points given.
std::string FormatMetricTable(const nlohmann::json& series);

// Columns ID ATTEMPT STEP TIME PATH METRICS, in the order given.
std::string FormatCheckpointTable(const nlohmann::json& checkpoints);

// Columns TIME FROM TO REASON, oldest first as given.
std::string FormatEventTable(const nlohmann::json& events);

// "42s", "5m", "3h", "2d": how long ago an RFC 3339 time was; "-" when absent or unreadable.
std::string FormatAge(const nlohmann::json& rfc3339_time, absl::Time now);

// "in 42s", "in 5m", ...: how long until an RFC 3339 time; "now" when it is less than a second
// away or past; "-" when absent or unreadable.
std::string FormatTimeUntil(const nlohmann::json& rfc3339_time, absl::Time now);

// The exit status `dlab run --follow` ends with for a job that ended in `state`:
// SUCCEEDED 0, FAILED its exit code (1 when null or 0), CANCELLED 130, anything else 1.
int ExitStatusForJob(const std::string& state, const nlohmann::json& exit_code);

}  // namespace dlab
