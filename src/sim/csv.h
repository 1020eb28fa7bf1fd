// The plain CSV of the trace and node files: a header line naming the columns, then one record
// per line, fields separated by commas, no quoting. Errors name the file and the line. Pure
// functions over values; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dlab::sim {

struct CsvLine {
  int number = 0;  // in the file, from 1 (the header)
  std::vector<std::string> fields;
};

struct CsvFile {
  std::string source;  // for messages, e.g. the path
  std::vector<std::string> header;
  std::vector<CsvLine> lines;  // the records; blank lines are left out

  // The column's index, if the header names it.
  std::optional<size_t> Column(std::string_view name) const;
  // InvalidArgument "SOURCE:LINE: message".
  absl::Status Error(const CsvLine& line, std::string_view message) const;
};

// InvalidArgument naming the line when a record has more or fewer fields than the header, or
// when there is no header.
absl::StatusOr<CsvFile> ParseCsv(std::string_view text, std::string source);

// The field as a whole number / a finite number; InvalidArgument "SOURCE:LINE: COLUMN: expected
// ..., got '...'" otherwise (an empty field included).
absl::StatusOr<int64_t> IntField(const CsvFile& file, const CsvLine& line, size_t column);
absl::StatusOr<double> NumberField(const CsvFile& file, const CsvLine& line, size_t column);

}  // namespace dlab::sim
