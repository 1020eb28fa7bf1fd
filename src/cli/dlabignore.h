// The .dlabignore rules of a code folder: which files `dlab run` leaves out of a snapshot. The
// syntax is gitignore's (comments, `!` negation, trailing `/` for directories, anchoring, `*` `?`
// `[...]` `**`); `.git` is always left out. Immutable once built, so safe to share between threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dlab {

enum class EntryKind { kFile, kDirectory };

class IgnoreRules final {
 public:
  // Rules from the text of a .dlabignore file (empty text: only the built-in `.git` rule).
  static IgnoreRules Parse(std::string_view text);

  // Whether `path` (relative to the folder root, '/'-separated, no leading "./") is left out:
  // either it matches an ignore rule itself (the last matching rule decides) or one of its parent
  // directories is left out, since as in git a file inside an excluded directory cannot be
  // re-included.
  bool IsIgnored(std::string_view path, EntryKind kind) const;

 private:
  struct Rule {
    std::vector<std::string> segments;  // the pattern split at '/'
    bool negated = false;
    bool directory_only = false;
    bool anchored = false;  // match the whole path from the root, not just the last component
  };

  // The decision for `path` alone, ignoring its parents.
  bool MatchesItself(std::string_view path, EntryKind kind) const;

  std::vector<Rule> rules_;
};

}  // namespace dlab
