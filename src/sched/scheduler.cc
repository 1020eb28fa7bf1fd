#include "sched/scheduler.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/quantity.h"

namespace dlab {
namespace {

struct Free {
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  std::vector<const GpuSlot*> gpus;  // free slots, by index
};

std::vector<const GpuSlot*> MatchingGpus(const std::vector<const GpuSlot*>& slots,
                                         const std::string& type) {
  std::vector<const GpuSlot*> out;
  for (const GpuSlot* s : slots) {
    if (type.empty() || GpuMatchesType(*s, type)) out.push_back(s);
  }
  return out;
}

// The free slots a task asking for `need` GPUs of `type` takes them from. A list of types gives
// one of them, never a mix (a job's processes should run on one GPU model): the first listed of
// which there are enough, else the one with the most.
std::vector<const GpuSlot*> OneTypeGpus(const std::vector<const GpuSlot*>& slots,
                                        const std::string& type, size_t need) {
  if (type.find(',') == std::string::npos) return MatchingGpus(slots, type);
  std::vector<const GpuSlot*> most;
  for (const std::string& one : GpuTypeChoices(type)) {
    std::vector<const GpuSlot*> these = MatchingGpus(slots, one);
    if (these.size() >= need) return these;
    if (these.size() > most.size()) most = std::move(these);
  }
  return most;
}

Resources Total(const std::vector<Resources>& tasks) {
  Resources total{.cpu_millis = 0, .memory_bytes = 0};
  for (const Resources& r : tasks) {
    total.cpu_millis += r.cpu_millis;
    total.memory_bytes += r.memory_bytes;
    total.gpus += r.gpus;
  }
  return total;
}

// GPUs needed by type as written ("" = any), over the tasks.
std::map<std::string, int> GpusByType(const std::vector<Resources>& tasks) {
  std::map<std::string, int> out;
  for (const Resources& r : tasks) {
    if (r.gpus > 0) out[r.gpu_type] += r.gpus;
  }
  return out;
}

// "GPUs", "H100 GPUs", "GPUs of one type of H100, A100" (of one task) or "GPUs of the types
// H100, A100" (of a gang's tasks together).
std::string GpuWord(const std::string& type, bool one_task = true) {
  if (type.empty()) return "GPUs";
  if (type.find(',') == std::string::npos) return absl::StrCat(type, " GPUs");
  return absl::StrCat(one_task ? "GPUs of one type of " : "GPUs of the types ",
                      absl::StrJoin(GpuTypeChoices(type), ", "));
}

struct GangFit {
  std::vector<TaskAllocation> tasks;  // when it fits
  std::string shortfall;              // why not; empty when it fits
};

// Places every task into free (one node), or says what is missing.
GangFit FitGang(const std::vector<Resources>& tasks, const Free& free) {
  Resources total = Total(tasks);
  std::vector<std::string> missing;
  if (total.cpu_millis > free.cpu_millis) {
    missing.push_back(absl::StrCat("cpus ", FormatCpuMillis(total.cpu_millis), " (free ",
                                   FormatCpuMillis(free.cpu_millis), ")"));
  }
  if (total.memory_bytes > free.memory_bytes) {
    missing.push_back(absl::StrCat("memory ", FormatMemoryBytes(total.memory_bytes), " (free ",
                                   FormatMemoryBytes(free.memory_bytes), ")"));
  }
  GangFit fit;
  std::vector<const GpuSlot*> left = free.gpus;
  bool gpus_fit = true;
  for (const Resources& r : tasks) {
    auto candidates = OneTypeGpus(left, r.gpu_type, r.gpus);
    if (candidates.size() < static_cast<size_t>(r.gpus)) {
      gpus_fit = false;
      break;
    }
    TaskAllocation a{.cpu_millis = r.cpu_millis, .memory_bytes = r.memory_bytes};
    for (int i = 0; i < r.gpus; ++i) {
      a.gpus.push_back(candidates[i]->index);
      left.erase(std::find(left.begin(), left.end(), candidates[i]));
    }
    std::sort(a.gpus.begin(), a.gpus.end());
    fit.tasks.push_back(std::move(a));
  }
  if (!gpus_fit) {
    for (const auto& [type, n] : GpusByType(tasks)) {
      bool list = type.find(',') != std::string::npos;
      missing.push_back(absl::StrCat(n, " ", GpuWord(type, tasks.size() == 1),
                                     list && tasks.size() == 1 ? " (at most " : " (free ",
                                     list && tasks.size() == 1
                                         ? OneTypeGpus(free.gpus, type, n).size()
                                         : MatchingGpus(free.gpus, type).size(),
                                     list && tasks.size() == 1 ? " free of one type)" : ")"));
    }
  }
  fit.shortfall = absl::StrJoin(missing, ", ");
  if (!fit.shortfall.empty()) fit.tasks.clear();
  return fit;
}

}  // namespace

std::vector<std::string> GpuTypeChoices(const std::string& type) {
  std::vector<std::string> out;
  for (absl::string_view one : absl::StrSplit(type, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(one));
  }
  return out;
}

bool GpuMatchesType(const GpuSlot& slot, const std::string& type) {
  if (type.find(',') != std::string::npos) {
    for (const std::string& one : GpuTypeChoices(type)) {
      if (GpuMatchesType(slot, one)) return true;
    }
    return false;
  }
  std::string want = absl::AsciiStrToLower(type);
  return absl::AsciiStrToLower(slot.type) == want ||
         absl::AsciiStrToLower(slot.model).find(want) != std::string::npos;
}

std::string GangShortfall(const std::vector<Resources>& tasks, const NodeCapacity& free) {
  Free f{.cpu_millis = free.cpu_millis, .memory_bytes = free.memory_bytes};
  for (const GpuSlot& s : free.gpus) f.gpus.push_back(&s);
  return FitGang(tasks, f).shortfall;
}

int GpusOfType(const TenantUsage& used, const std::string& type) {
  int n = 0;
  for (const auto& [t, m] : used.gpus_by_type) {
    if (absl::AsciiStrToLower(t) == absl::AsciiStrToLower(type)) n += m;
  }
  return n;
}

TenantUsage UsageOf(const Allocation& allocation, const NodeCapacity& node) {
  TenantUsage u{.gpus = static_cast<int>(allocation.gpus.size()),
                .cpu_millis = allocation.cpu_millis,
                .memory_bytes = allocation.memory_bytes,
                .running_jobs = 1};
  for (int index : allocation.gpus) {
    for (const GpuSlot& s : node.gpus) {
      if (s.index == index) ++u.gpus_by_type[s.type];
    }
  }
  return u;
}

std::string QuotaShortfall(const TenantQuota& q, const TenantUsage& used, const TenantUsage& add) {
  std::vector<std::string> over;
  auto check = [&](const char* what, int64_t limit, int64_t in_use, int64_t more, auto format) {
    if (in_use + more <= limit) return;
    over.push_back(absl::StrCat(what, ": needs ", format(more), ", ", format(in_use), " of ",
                                format(limit), " in use"));
  };
  auto plain = [](int64_t n) { return absl::StrCat(n); };
  if (q.running_jobs && add.running_jobs > 0) {
    check("running_jobs", *q.running_jobs, used.running_jobs, add.running_jobs, plain);
  }
  if (q.gpus && add.gpus > 0) check("gpus", *q.gpus, used.gpus, add.gpus, plain);
  for (const auto& [type, n] : add.gpus_by_type) {
    auto limit = GpuTypeLimit(q, type);
    if (!limit || n == 0) continue;
    check(absl::StrCat("gpus_by_type.", type).c_str(), *limit, GpusOfType(used, type), n, plain);
  }
  if (q.cpu_millis && add.cpu_millis > 0) {
    check("cpus", *q.cpu_millis, used.cpu_millis, add.cpu_millis, FormatCpuMillis);
  }
  if (q.memory_bytes && add.memory_bytes > 0) {
    check("memory", *q.memory_bytes, used.memory_bytes, add.memory_bytes, FormatMemoryBytes);
  }
  return absl::StrJoin(over, "; ");
}

absl::Status CheckQuotaCanEverAdmit(const std::vector<Resources>& tasks, const TenantQuota& q) {
  Resources total = Total(tasks);
  TenantUsage want{.gpus = total.gpus,
                   .cpu_millis = total.cpu_millis,
                   .memory_bytes = total.memory_bytes,
                   .running_jobs = 1};
  for (const auto& [type, n] : GpusByType(tasks)) {
    if (!type.empty()) want.gpus_by_type[type] += n;
  }
  std::string over = QuotaShortfall(q, TenantUsage{}, want);
  if (over.empty()) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("exceeds the tenant's quota, so it could never start: ", over));
}

const NodeCapacity& LargestNode(const std::vector<NodeCapacity>& nodes) {
  auto size = [](const NodeCapacity& n) {
    return std::tuple(n.gpus.size(), n.cpu_millis, n.memory_bytes);
  };
  const NodeCapacity* largest = &nodes.front();
  for (const NodeCapacity& n : nodes) {
    if (size(n) > size(*largest)) largest = &n;
  }
  return *largest;
}

absl::Status CheckCanEverRun(const std::vector<Resources>& tasks, const NodeCapacity& node) {
  bool gang = tasks.size() > 1;
  Resources total = Total(tasks);
  // One task: the field at fault is resources.*; a gang: the tasks together.
  auto where = [&](absl::string_view field) {
    return gang ? std::string("tasks") : absl::StrCat("resources.", field);
  };
  auto what = [&](const std::string& amount) {
    return gang ? absl::StrCat(tasks.size(), " tasks need ", amount, " in total")
                : absl::StrCat(amount, " requested");
  };
  if (total.cpu_millis > node.cpu_millis) {
    return absl::InvalidArgumentError(absl::StrCat(
        where("cpus"), ": ", what(absl::StrCat(FormatCpuMillis(total.cpu_millis), " CPUs")),
        ", but the largest node has ", FormatCpuMillis(node.cpu_millis)));
  }
  if (total.memory_bytes > node.memory_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where("memory"), ": ", what(FormatMemoryBytes(total.memory_bytes)),
                     ", but the largest node has ", FormatMemoryBytes(node.memory_bytes)));
  }
  std::vector<const GpuSlot*> all;
  for (const GpuSlot& s : node.gpus) all.push_back(&s);
  for (const Resources& r : tasks) {
    if (r.gpu_type.empty() || !MatchingGpus(all, r.gpu_type).empty()) continue;
    std::set<std::string> types;
    for (const GpuSlot& s : node.gpus) types.insert(s.type);
    std::vector<std::string> asked = GpuTypeChoices(r.gpu_type);
    return absl::InvalidArgumentError(absl::StrCat(
        gang ? "tasks" : "resources.gpu_type",
        asked.size() > 1 ? ": no GPU of any of the types '" : ": no GPU of type '",
        absl::StrJoin(asked, "', '"),
        "' on this cluster (types: ", types.empty() ? "none" : absl::StrJoin(types, ", "), ")"));
  }
  for (const auto& [type, n] : GpusByType(tasks)) {
    // A gang's tasks may each take another of the listed types (FitGang below judges them).
    size_t matching = gang ? MatchingGpus(all, type).size() : OneTypeGpus(all, type, n).size();
    if (static_cast<size_t>(n) > matching) {
      return absl::InvalidArgumentError(
          absl::StrCat(where("gpus"), ": ", what(absl::StrCat(n, " ", GpuWord(type, !gang))),
                       ", but the largest node has ", matching));
    }
  }
  if (FitGang(tasks,
              Free{.cpu_millis = node.cpu_millis, .memory_bytes = node.memory_bytes, .gpus = all})
          .shortfall.empty()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      "tasks: the tasks' GPU types cannot all be satisfied at once on the largest node");
}

}  // namespace dlab
