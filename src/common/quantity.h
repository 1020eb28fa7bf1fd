// Parsing and printing of Kubernetes-style quantities ("500m", "2", "4Gi", "512M") and
// durations ("90s", "2h", "1h30m"). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace dlab {

// CPUs as millicores: "2" -> 2000, "0.5" -> 500, "250m" -> 250. InvalidArgument otherwise.
absl::StatusOr<int64_t> ParseCpuMillis(absl::string_view text);
// Bytes: "4Gi", "512Mi", "1G", "1000", "1.5Gi". InvalidArgument otherwise.
absl::StatusOr<int64_t> ParseMemoryBytes(absl::string_view text);
// "90s", "2h", "1h30m", "500ms"; a bare number means seconds. InvalidArgument otherwise.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);

std::string FormatCpuMillis(int64_t millis);   // 2000 -> "2", 500 -> "500m"
std::string FormatMemoryBytes(int64_t bytes);  // 4294967296 -> "4Gi"

}  // namespace dlab
