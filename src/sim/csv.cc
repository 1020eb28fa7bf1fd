#include "sim/csv.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace dlab::sim {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string> SplitFields(std::string_view line) {
  std::vector<std::string> fields;
  size_t begin = 0;
  while (true) {
    size_t comma = line.find(',', begin);
    fields.emplace_back(Trim(line.substr(begin, comma - begin)));
    if (comma == std::string_view::npos) return fields;
    begin = comma + 1;
  }
}

template <typename T>
absl::StatusOr<T> ParseField(const CsvFile& file, const CsvLine& line, size_t column,
                             std::string_view expected) {
  const std::string& text = line.fields[column];
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  bool ok = !text.empty() && ec == std::errc() && end == text.data() + text.size();
  if constexpr (std::is_floating_point_v<T>) ok = ok && std::isfinite(value);
  if (ok) return value;
  return file.Error(line, absl::StrCat(file.header[column], ": expected ", std::string(expected),
                                       ", got '", text, "'"));
}

}  // namespace

std::optional<size_t> CsvFile::Column(std::string_view name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return i;
  }
  return std::nullopt;
}

absl::Status CsvFile::Error(const CsvLine& line, std::string_view message) const {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ":", line.number, ": ", std::string(message)));
}

absl::StatusOr<CsvFile> ParseCsv(std::string_view text, std::string source) {
  CsvFile file{.source = std::move(source)};
  constexpr std::string_view kBom =
      "\xEF\xBB\xBF";  // a UTF-8 byte order mark, as some editors save
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  int number = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t newline = text.find('\n', begin);
    std::string_view raw = text.substr(begin, newline - begin);
    begin = newline == std::string_view::npos ? text.size() : newline + 1;
    ++number;
    if (Trim(raw).empty()) continue;
    CsvLine line{.number = number, .fields = SplitFields(raw)};
    if (file.header.empty()) {
      file.header = std::move(line.fields);
      continue;
    }
    if (line.fields.size() != file.header.size()) {
      return file.Error(
          line, absl::StrCat("expected ", file.header.size(), " fields (", file.header.size(),
                             " columns), got ", line.fields.size()));
    }
    file.lines.push_back(std::move(line));
  }
  if (file.header.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file.source, ": empty file, no header line"));
  }
  return file;
}

absl::StatusOr<int64_t> IntField(const CsvFile& file, const CsvLine& line, size_t column) {
  return ParseField<int64_t>(file, line, column, "a whole number");
}

absl::StatusOr<double> NumberField(const CsvFile& file, const CsvLine& line, size_t column) {
  return ParseField<double>(file, line, column, "a number");
}

}  // namespace dlab::sim
