// The job spec wire format: parsing and validating a user's spec (JSON, or YAML converted with
// ParseYamlOrJson) into a JobSpec, and the normalized JSON form the API returns.
// Every error is InvalidArgument with a message that starts with the field path at fault,
// e.g. "resources.memory: '4GB' is not a memory quantity (examples: 4Gi, 512Mi, 1G)".
// Pure functions, thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "common/job.h"
#include "nlohmann/json_fwd.hpp"

namespace dlab {

absl::StatusOr<JobSpec> ParseJobSpec(const nlohmann::json& spec);

// The normalized spec: every field present, quantities in canonical form ("2", "4Gi", "2h").
// ParseJobSpec(JobSpecToJson(s)) == s.
nlohmann::json JobSpecToJson(const JobSpec& spec);

}  // namespace dlab
