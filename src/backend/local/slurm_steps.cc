#include "backend/local/slurm_steps.h"

#include <sys/wait.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace dlab {
namespace {

// Appends the names one host-list item stands for ("n[1-2]x[a,b]"...).
absl::Status ExpandItem(absl::string_view item, std::vector<std::string>& out) {
  size_t open = item.find('[');
  if (open == absl::string_view::npos) {
    if (item.find(']') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unbalanced ']' in '", item, "'"));
    }
    out.emplace_back(item);
    return absl::OkStatus();
  }
  size_t close = item.find(']', open);
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("unbalanced '[' in '", item, "'"));
  }
  absl::string_view prefix = item.substr(0, open);
  absl::string_view rest = item.substr(close + 1);
  for (absl::string_view range : absl::StrSplit(item.substr(open + 1, close - open - 1), ',')) {
    std::pair<absl::string_view, absl::string_view> bounds = absl::StrSplit(range, '-');
    if (bounds.second.empty()) bounds.second = bounds.first;
    uint64_t from = 0, to = 0;
    if (bounds.first.empty() || !absl::SimpleAtoi(bounds.first, &from) ||
        !absl::SimpleAtoi(bounds.second, &to) || to < from || to - from > 100000) {
      return absl::InvalidArgumentError(absl::StrCat("bad range '", range, "' in '", item, "'"));
    }
    size_t width = bounds.first.size();
    for (uint64_t n = from; n <= to; ++n) {
      std::string digits = absl::StrCat(n);
      if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
      if (auto s = ExpandItem(absl::StrCat(prefix, digits, rest), out); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string SlurmBinary(absl::string_view bin_dir, absl::string_view name) {
  if (bin_dir.empty()) return std::string(name);
  return absl::StrCat(absl::StripSuffix(bin_dir, "/"), "/", name);
}

absl::StatusOr<std::vector<std::string>> ExpandSlurmHostlist(absl::string_view list) {
  std::vector<std::string> hosts;
  // Items are separated by commas outside brackets.
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size() && list[i] == '[') ++depth;
    if (i < list.size() && list[i] == ']') --depth;
    if (i < list.size() && (list[i] != ',' || depth > 0)) continue;
    absl::string_view item = absl::StripAsciiWhitespace(list.substr(start, i - start));
    start = i + 1;
    if (item.empty()) continue;
    if (auto s = ExpandItem(item, hosts); !s.ok()) return s;
  }
  if (depth != 0) {
    return absl::InvalidArgumentError(absl::StrCat("unbalanced brackets in '", list, "'"));
  }
  return hosts;
}

absl::StatusOr<std::vector<int>> ExpandSlurmTasksPerNode(absl::string_view counts) {
  std::vector<int> out;
  for (absl::string_view item : absl::StrSplit(counts, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    int n = 0, times = 1;
    size_t paren = item.find("(x");
    bool ok = absl::SimpleAtoi(item.substr(0, paren), &n) && n >= 0;
    if (ok && paren != absl::string_view::npos) {
      absl::string_view rep = item.substr(paren + 2);
      ok = absl::ConsumeSuffix(&rep, ")") && absl::SimpleAtoi(rep, &times) && times > 0;
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad task count '", item, "' in '", counts, "'"));
    }
    out.insert(out.end(), times, n);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> SlurmRankHosts(absl::string_view nodelist,
                                                        absl::string_view tasks_per_node,
                                                        int ntasks) {
  absl::StatusOr<std::vector<std::string>> hosts = ExpandSlurmHostlist(nodelist);
  if (!hosts.ok()) return hosts.status();
  absl::StatusOr<std::vector<int>> counts = ExpandSlurmTasksPerNode(tasks_per_node);
  if (!counts.ok()) return counts.status();
  if (hosts->size() != counts->size()) {
    return absl::InvalidArgumentError(absl::StrCat("SLURM_JOB_NODELIST '", nodelist, "' names ",
                                                   hosts->size(), " nodes, SLURM_TASKS_PER_NODE '",
                                                   tasks_per_node, "' ", counts->size()));
  }
  std::vector<std::string> ranks;
  for (size_t i = 0; i < hosts->size(); ++i) {
    for (int k = 0; k < (*counts)[i] && static_cast<int>(ranks.size()) < ntasks; ++k) {
      ranks.push_back((*hosts)[i]);
    }
  }
  if (static_cast<int>(ranks.size()) < ntasks) {
    return absl::InvalidArgumentError(absl::StrCat("the allocation (", nodelist, ": ",
                                                   tasks_per_node, ") has room for ", ranks.size(),
                                                   " tasks, not ", ntasks));
  }
  return ranks;
}

std::vector<std::string> SrunCommand(const SlurmStepsSpec& steps, const TaskSpec& task,
                                     const std::string& host) {
  std::vector<std::string> argv = {
      SlurmBinary(steps.bin_dir, "srun"),
      "--nodes=1",
      "--ntasks=1",
      absl::StrCat("--nodelist=", host),
      "--exact",
      "--quiet",
      "--input=none",
      absl::StrCat("--job-name=rank-", task.rank),
      absl::StrCat("--cpus-per-task=", std::max<int64_t>(1, (task.cpu_millis + 999) / 1000))};
  if (task.memory_bytes > 0) {
    argv.push_back(absl::StrCat("--mem=", (task.memory_bytes + (1 << 20) - 1) >> 20));
  }
  if (task.gpus.empty()) {
    argv.push_back("--gres=none");
  } else if (steps.gpu_type.empty()) {
    argv.push_back(absl::StrCat("--gres=gpu:", task.gpus.size()));
  } else {
    argv.push_back(absl::StrCat("--gres=gpu:", steps.gpu_type, ":", task.gpus.size()));
  }
  return argv;
}

int SrunWaitStatus(int status) {
  if (!WIFEXITED(status)) return status;
  int code = WEXITSTATUS(status);
  if (code > 128 && code < 128 + 32) return code - 128;  // as if killed by signal code-128
  return status;
}

}  // namespace dlab
