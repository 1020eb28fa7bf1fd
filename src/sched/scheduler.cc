#include "sched/scheduler.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

std::string GpuWord(const Resources& r) {
  return r.gpu_type.empty() ? "GPUs" : absl::StrCat(r.gpu_type, " GPUs");
}

// Why the request does not fit into free; empty when it fits.
std::string Shortfall(const Resources& r, const Free& free) {
  std::vector<std::string> missing;
  if (r.cpu_millis > free.cpu_millis) {
    missing.push_back(absl::StrCat("cpus ", FormatCpuMillis(r.cpu_millis), " (free ",
                                   FormatCpuMillis(free.cpu_millis), ")"));
  }
  if (r.memory_bytes > free.memory_bytes) {
    missing.push_back(absl::StrCat("memory ", FormatMemoryBytes(r.memory_bytes), " (free ",
                                   FormatMemoryBytes(free.memory_bytes), ")"));
  }
  size_t gpus_free = MatchingGpus(free.gpus, r.gpu_type).size();
  if (static_cast<size_t>(r.gpus) > gpus_free) {
    missing.push_back(absl::StrCat(r.gpus, " ", GpuWord(r), " (free ", gpus_free, ")"));
  }
  return absl::StrJoin(missing, ", ");
}

}  // namespace

bool GpuMatchesType(const GpuSlot& slot, const std::string& type) {
  std::string want = absl::AsciiStrToLower(type);
  return absl::AsciiStrToLower(slot.type) == want ||
         absl::AsciiStrToLower(slot.model).find(want) != std::string::npos;
}

ScheduleDecision ScheduleFifo(const ScheduleInput& input) {
  Free free{.cpu_millis = input.node.cpu_millis, .memory_bytes = input.node.memory_bytes};
  std::set<int> used_gpus;
  for (const Allocation& a : input.in_use) {
    free.cpu_millis -= a.cpu_millis;
    free.memory_bytes -= a.memory_bytes;
    used_gpus.insert(a.gpus.begin(), a.gpus.end());
  }
  for (const GpuSlot& s : input.node.gpus) {
    if (!used_gpus.contains(s.index)) free.gpus.push_back(&s);
  }

  ScheduleDecision out;
  int64_t blocker = 0;
  for (const QueuedJob& job : input.queue) {
    if (blocker != 0) {
      out.wait.push_back(
          {job.job_id, absl::StrCat("waiting behind job ", blocker, " (FIFO order)")});
      continue;
    }
    std::string shortfall = Shortfall(job.resources, free);
    if (!shortfall.empty()) {
      out.wait.push_back({job.job_id, absl::StrCat("waiting for resources: needs ", shortfall)});
      blocker = job.job_id;
      continue;
    }
    Allocation a{.cpu_millis = job.resources.cpu_millis,
                 .memory_bytes = job.resources.memory_bytes};
    auto candidates = MatchingGpus(free.gpus, job.resources.gpu_type);
    candidates.resize(job.resources.gpus);
    for (const GpuSlot* s : candidates) {
      a.gpus.push_back(s->index);
      free.gpus.erase(std::find(free.gpus.begin(), free.gpus.end(), s));
    }
    std::sort(a.gpus.begin(), a.gpus.end());
    free.cpu_millis -= a.cpu_millis;
    free.memory_bytes -= a.memory_bytes;
    out.start.push_back({job.job_id, std::move(a)});
  }
  return out;
}

absl::Status CheckCanEverRun(const Resources& r, const NodeCapacity& node) {
  if (r.cpu_millis > node.cpu_millis) {
    return absl::InvalidArgumentError(absl::StrCat(
        "resources.cpus: ", FormatCpuMillis(r.cpu_millis),
        " CPUs requested, but the largest node has ", FormatCpuMillis(node.cpu_millis)));
  }
  if (r.memory_bytes > node.memory_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "resources.memory: ", FormatMemoryBytes(r.memory_bytes),
        " requested, but the largest node has ", FormatMemoryBytes(node.memory_bytes)));
  }
  if (r.gpus == 0) return absl::OkStatus();
  std::vector<const GpuSlot*> all;
  for (const GpuSlot& s : node.gpus) all.push_back(&s);
  size_t matching = MatchingGpus(all, r.gpu_type).size();
  if (!r.gpu_type.empty() && matching == 0) {
    std::set<std::string> types;
    for (const GpuSlot& s : node.gpus) types.insert(s.type);
    return absl::InvalidArgumentError(absl::StrCat(
        "resources.gpu_type: no GPU of type '", r.gpu_type,
        "' on this cluster (types: ", types.empty() ? "none" : absl::StrJoin(types, ", "), ")"));
  }
  if (static_cast<size_t>(r.gpus) > matching) {
    return absl::InvalidArgumentError(absl::StrCat("resources.gpus: ", r.gpus, " ", GpuWord(r),
                                                   " requested, but the largest node has ",
                                                   matching));
  }
  return absl::OkStatus();
}

}  // namespace dlab
