// How the CLI shows API objects to people: the job table of `dlab ls`, the block of
// `dlab describe`, the event table of `dlab events`. Works on the JSON the REST API returns and
// tolerates missing fields. Pure functions, thread-safe.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace dlab {

// Columns ID NAME STATE AGE GPUS REASON, one row per job; AGE is counted back from `now`.
std::string FormatJobTable(const nlohmann::json& jobs, absl::Time now);

// id, name, state and reason, exit code, times, command, resources, labels, and each attempt
// with its allocation and the lines saying which limits were (or could not be) enforced.
std::string FormatJobDescription(const nlohmann::json& job, absl::Time now);

// Columns TIME FROM TO REASON, oldest first as given.
std::string FormatEventTable(const nlohmann::json& events);

// "42s", "5m", "3h", "2d": how long ago an RFC 3339 time was; "-" when absent or unreadable.
std::string FormatAge(const nlohmann::json& rfc3339_time, absl::Time now);

// The exit status `dlab run --follow` ends with for a job that ended in `state`:
// SUCCEEDED 0, FAILED its exit code (1 when null or 0), CANCELLED 130, anything else 1.
int ExitStatusForJob(const std::string& state, const nlohmann::json& exit_code);

}  // namespace dlab
