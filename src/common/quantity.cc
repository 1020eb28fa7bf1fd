#include "common/quantity.h"

#include <charconv>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dlab {
namespace {

// Splits "1.5Gi" into 1.5 and "Gi". False when no number leads the text.
bool SplitNumber(absl::string_view text, double* value, absl::string_view* suffix) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, *value);
  if (ec != std::errc() || ptr == begin) return false;
  *suffix = absl::string_view(ptr, end - ptr);
  return std::isfinite(*value);
}

}  // namespace

absl::StatusOr<int64_t> ParseCpuMillis(absl::string_view text) {
  double value = 0;
  absl::string_view suffix;
  if (!SplitNumber(text, &value, &suffix) || (suffix != "" && suffix != "m")) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a CPU quantity (examples: 2, 0.5, 500m)"));
  }
  double millis = suffix == "m" ? value : value * 1000;
  if (millis < 1 || millis > 1e9) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is out of range (1m and up)"));
  }
  return static_cast<int64_t>(std::llround(millis));
}

absl::StatusOr<int64_t> ParseMemoryBytes(absl::string_view text) {
  static const std::pair<absl::string_view, double> kUnits[] = {
      {"", 1},     {"k", 1e3},     {"K", 1e3},        {"M", 1e6},           {"G", 1e9},
      {"T", 1e12}, {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
  };
  double value = 0;
  absl::string_view suffix;
  if (SplitNumber(text, &value, &suffix)) {
    for (const auto& [unit, factor] : kUnits) {
      if (suffix != unit) continue;
      double bytes = value * factor;
      if (bytes < 1 || bytes > 9e18) break;
      return static_cast<int64_t>(std::llround(bytes));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a memory quantity (examples: 4Gi, 512Mi, 1G)"));
}

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  absl::Duration d;
  double seconds = 0;
  absl::string_view suffix;
  if (SplitNumber(text, &seconds, &suffix) && suffix.empty()) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a duration (examples: 90s, 30m, 2h, 1h30m)"));
  }
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is negative"));
  }
  return d;
}

std::string FormatCpuMillis(int64_t millis) {
  if (millis % 1000 == 0) return absl::StrCat(millis / 1000);
  return absl::StrCat(millis, "m");
}

std::string FormatMemoryBytes(int64_t bytes) {
  static const std::pair<absl::string_view, int64_t> kUnits[] = {
      {"Ti", 1LL << 40}, {"Gi", 1LL << 30}, {"Mi", 1LL << 20}, {"Ki", 1LL << 10}};
  for (const auto& [unit, factor] : kUnits) {
    if (bytes >= factor && bytes % factor == 0) return absl::StrCat(bytes / factor, unit);
  }
  return absl::StrCat(bytes);  // exact, so that it parses back to the same value
}

}  // namespace dlab
