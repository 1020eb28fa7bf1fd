// Conversion of YAML documents (job specs, config files) into JSON values, so that one parser
// (on nlohmann::json) validates specs whichever format a person wrote. Thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace dlab {

// Parses text as YAML (JSON is a subset of YAML 1.2, so JSON input works too) and converts it:
// unquoted scalars that read as integers, floats, true/false or null get those types; quoted
// scalars stay strings. InvalidArgument with the line and column of a syntax error.
absl::StatusOr<nlohmann::json> ParseYamlOrJson(absl::string_view text);

}  // namespace dlab
