// How `dlab top` draws one frame: this node's host and GPU readings from a telemetry sample, and
// the running job on each GPU. Readings that are not available show as "n/a", never as 0. Pure
// functions over the JSON of the REST API, thread-safe.
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace dlab {

// One frame: a line with the node and the sample's time, a line with the host's CPU, memory and
// disk, then columns GPU MODEL UTIL MEMORY TEMP POWER JOB NAME OWNER, one row per GPU, and the
// sample's gpu_note when it has one. `sample` is GET /api/v1/telemetry's "latest" (null before
// the first sample); `jobs` the jobs holding resources (GET /api/v1/jobs' "jobs"), where a GPU's
// holder (its "job" id) finds its name and owner; a holder the caller cannot see shows its id
// alone.
std::string FormatTopFrame(const nlohmann::json& sample, const nlohmann::json& jobs);

}  // namespace dlab
