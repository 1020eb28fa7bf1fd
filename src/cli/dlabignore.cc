#include "cli/dlabignore.h"

namespace dlab {
namespace {

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> components = Split(path, '/');
  std::erase(components, std::string_view());
  return components;
}

// Matches a bracket expression starting at pattern[*i] == '['. On return *i is just past the
// closing ']'. Returns false with *i unchanged when the bracket is not closed (then '[' is
// literal).
bool MatchBracket(std::string_view pattern, size_t* i, char c, bool* matched) {
  size_t p = *i + 1;
  bool negated = false;
  if (p < pattern.size() && (pattern[p] == '!' || pattern[p] == '^')) {
    negated = true;
    ++p;
  }
  bool found = false;
  bool first = true;
  while (p < pattern.size() && (first || pattern[p] != ']')) {
    first = false;
    char lo = pattern[p];
    if (lo == '\\' && p + 1 < pattern.size()) lo = pattern[++p];
    char hi = lo;
    if (p + 2 < pattern.size() && pattern[p + 1] == '-' && pattern[p + 2] != ']') {
      hi = pattern[p + 2];
      if (hi == '\\' && p + 3 < pattern.size()) hi = pattern[++p + 2];
      p += 2;
    }
    if (lo <= c && c <= hi) found = true;
    ++p;
  }
  if (p >= pattern.size()) return false;
  *i = p + 1;
  *matched = found != negated;
  return true;
}

// fnmatch-style matching of one path component: `*` (any run), `?`, `[...]`, `\x`.
bool GlobComponent(std::string_view pattern, std::string_view name) {
  size_t p = 0;
  size_t n = 0;
  size_t star_p = std::string_view::npos;  // pattern position just after the last '*'
  size_t star_n = 0;                       // name position that '*' is matched up to
  while (n < name.size()) {
    if (p < pattern.size()) {
      char pc = pattern[p];
      if (pc == '*') {
        while (p < pattern.size() && pattern[p] == '*') ++p;
        star_p = p;
        star_n = n;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++n;
        continue;
      }
      if (pc == '[') {
        size_t q = p;
        bool matched = false;
        if (MatchBracket(pattern, &q, name[n], &matched)) {
          if (matched) {
            p = q;
            ++n;
            continue;
          }
        } else if (name[n] == '[') {
          ++p;
          ++n;
          continue;
        }
      } else {
        if (pc == '\\' && p + 1 < pattern.size()) pc = pattern[p + 1];
        if (pc == name[n]) {
          p += pattern[p] == '\\' && p + 1 < pattern.size() ? 2 : 1;
          ++n;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    n = ++star_n;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Matches pattern components against path components; "**" stands for any number of
// directories, and a trailing "**" for at least one component (everything inside).
bool GlobComponents(const std::vector<std::string>& pattern, size_t i,
                    const std::vector<std::string_view>& path, size_t j) {
  if (i == pattern.size()) return j == path.size();
  if (pattern[i] == "**") {
    if (i + 1 == pattern.size()) return j < path.size();
    for (size_t k = j; k <= path.size(); ++k) {
      if (GlobComponents(pattern, i + 1, path, k)) return true;
    }
    return false;
  }
  return j < path.size() && GlobComponent(pattern[i], path[j]) &&
         GlobComponents(pattern, i + 1, path, j + 1);
}

}  // namespace

IgnoreRules IgnoreRules::Parse(std::string_view text) {
  IgnoreRules rules;
  for (std::string_view line : Split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && line.back() == ' ' &&
           !(line.size() >= 2 && line[line.size() - 2] == '\\')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#') continue;
    Rule rule;
    if (line.front() == '!') {
      rule.negated = true;
      line.remove_prefix(1);
    }
    if (!line.empty() && line.back() == '/') {
      rule.directory_only = true;
      while (!line.empty() && line.back() == '/') line.remove_suffix(1);
    }
    rule.anchored = line.find('/') != std::string_view::npos;
    for (std::string_view segment : SplitPath(line)) rule.segments.emplace_back(segment);
    if (rule.segments.empty()) continue;
    rules.rules_.push_back(std::move(rule));
  }
  return rules;
}

bool IgnoreRules::IsIgnored(std::string_view path, EntryKind kind) const {
  for (size_t slash = path.find('/'); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    if (slash > 0 && MatchesItself(path.substr(0, slash), EntryKind::kDirectory)) return true;
  }
  return MatchesItself(path, kind);
}

bool IgnoreRules::MatchesItself(std::string_view path, EntryKind kind) const {
  std::vector<std::string_view> components = SplitPath(path);
  if (components.empty()) return false;
  // The repository's own metadata never belongs in a snapshot, whatever the rules say.
  if (components.back() == ".git") return true;
  for (auto rule = rules_.rbegin(); rule != rules_.rend(); ++rule) {
    if (rule->directory_only && kind != EntryKind::kDirectory) continue;
    bool matches = rule->anchored ? GlobComponents(rule->segments, 0, components, 0)
                                  : GlobComponent(rule->segments[0], components.back());
    if (matches) return !rule->negated;
  }
  return false;
}

}  // namespace dlab
