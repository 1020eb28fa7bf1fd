#include "sim/workload.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

#include "absl/strings/str_cat.h"

namespace dlab::sim {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Nodes alike in what they have, and how many of them there are.
struct NodeShape {
  const NodeCapacity* node = nullptr;
  int count = 0;
};

std::vector<NodeShape> ShapesOf(const std::vector<NodeCapacity>& nodes) {
  using Key = std::tuple<int64_t, int64_t, size_t, std::string>;
  std::map<Key, size_t> index;
  std::vector<NodeShape> shapes;
  for (const NodeCapacity& node : nodes) {
    Key key{node.cpu_millis, node.memory_bytes, node.gpus.size(),
            node.gpus.empty() ? "" : node.gpus.front().type};
    auto [it, added] = index.emplace(key, shapes.size());
    if (added) shapes.push_back({.node = &node});
    ++shapes[it->second].count;
  }
  return shapes;
}

int MatchingGpus(const NodeCapacity& node, const std::string& type) {
  if (type.empty()) return static_cast<int>(node.gpus.size());
  return static_cast<int>(std::count_if(node.gpus.begin(), node.gpus.end(),
                                        [&](const GpuSlot& s) { return GpuMatchesType(s, type); }));
}

std::string GpusOfType(int64_t n, const std::string& type) {
  return type.empty() ? absl::StrCat(n, " GPUs") : absl::StrCat(n, " ", type, " GPUs");
}

// Which trace jobs could ever run on the cluster, and as which tasks. Remembers its answers by
// what a job asks, as traces repeat the same few shapes of job.
class FitChecker {
 public:
  explicit FitChecker(const std::vector<NodeCapacity>& nodes) : shapes_(ShapesOf(nodes)) {}

  struct Answer {
    std::vector<Resources> tasks;
    std::string never;  // why the job could never run; empty when it could
  };

  const Answer& Check(const TraceJob& job) {
    Key key{job.gpus, job.gpu_type, job.cpu_millis.value_or(-1), job.memory_bytes.value_or(-1)};
    auto it = memo_.find(key);
    if (it != memo_.end()) return it->second;
    Answer answer{.tasks = TasksFor(job, LargestGpus(job.gpu_type))};
    answer.never = WhyNever(answer.tasks, job.gpus, job.gpu_type);
    return memo_.emplace(std::move(key), std::move(answer)).first->second;
  }

 private:
  using Key = std::tuple<int, std::string, int64_t, int64_t>;

  int LargestGpus(const std::string& type) const {
    int largest = 0;
    for (const NodeShape& shape : shapes_)
      largest = std::max(largest, MatchingGpus(*shape.node, type));
    return largest;
  }

  // How many nodes could hold the task on their own, and why none could (from the node with the
  // most GPUs) when none.
  int Hosts(const Resources& task, std::string* why_none) const {
    int hosts = 0;
    size_t most_gpus = 0;
    for (const NodeShape& shape : shapes_) {
      absl::Status can = CheckCanEverRun({task}, *shape.node);
      if (can.ok()) {
        hosts += shape.count;
      } else if (why_none->empty() || shape.node->gpus.size() > most_gpus) {
        *why_none = std::string(can.message());
        most_gpus = shape.node->gpus.size();
      }
    }
    return hosts;
  }

  std::string WhyNever(const std::vector<Resources>& tasks, int gpus,
                       const std::string& type) const {
    int64_t cluster_gpus = 0;
    for (const NodeShape& shape : shapes_) {
      cluster_gpus += int64_t{shape.count} * MatchingGpus(*shape.node, type);
    }
    if (gpus > cluster_gpus) {
      return absl::StrCat("needs ", GpusOfType(gpus, type), ", the cluster has ", cluster_gpus);
    }
    std::string why;
    int hosts = Hosts(tasks.front(), &why);
    if (hosts == 0) return why;
    if (tasks.back() != tasks.front() && Hosts(tasks.back(), &why) == 0) return why;
    int full_tasks = static_cast<int>(std::count(tasks.begin(), tasks.end(), tasks.front()));
    if (full_tasks > hosts) {
      return absl::StrCat("a gang of ", full_tasks, " tasks of ",
                          GpusOfType(tasks.front().gpus, type),
                          " needs as many nodes that hold one, ", "the cluster has ", hosts);
    }
    return "";
  }

  std::vector<NodeShape> shapes_;
  std::map<Key, Answer> memo_;
};

}  // namespace

std::vector<Resources> TasksFor(const TraceJob& job, int largest_gpus) {
  int64_t units = std::max(job.gpus, 1);  // what CPU and memory defaults are counted in
  int64_t cpu = job.cpu_millis.value_or(units * kJobCpuMillisPerGpu);
  int64_t memory = job.memory_bytes.value_or(units * kJobMemoryBytesPerGpu);
  // No node with a GPU of its type: one task, which WhyNever then refuses.
  if (job.gpus <= std::max(largest_gpus, 1) || largest_gpus <= 0) {
    return {
        {.cpu_millis = cpu, .memory_bytes = memory, .gpus = job.gpus, .gpu_type = job.gpu_type}};
  }
  std::vector<Resources> tasks;
  for (int left = job.gpus; left > 0; left -= largest_gpus) {
    int gpus = std::min(left, largest_gpus);
    tasks.push_back({.cpu_millis = CeilDiv(cpu * gpus, job.gpus),
                     .memory_bytes = CeilDiv(memory * gpus, job.gpus),
                     .gpus = gpus,
                     .gpu_type = job.gpu_type});
  }
  return tasks;
}

Workload BuildWorkload(const std::vector<TraceJob>& selected,
                       const std::vector<NodeCapacity>& nodes) {
  Workload workload;
  FitChecker fit(nodes);
  workload.jobs.reserve(selected.size());
  std::unordered_map<std::string, int64_t> tenant_ids;
  for (const TraceJob& job : selected) {
    if (!job.duration_s) {
      ++workload.no_duration;
      continue;
    }
    const FitChecker::Answer& answer = fit.Check(job);
    if (!answer.never.empty()) {
      if (workload.skipped++ == 0) {
        workload.first_skipped = absl::StrCat("job ", job.id, ": ", answer.never);
      }
      continue;
    }
    if (workload.jobs.empty()) workload.shift_s = job.submit_s;
    auto [tenant, added] =
        tenant_ids.emplace(job.tenant, static_cast<int64_t>(tenant_ids.size()) + 1);
    if (added) workload.tenants.push_back(job.tenant);
    workload.fractional_gpu += job.fractional_gpu;
    SimJob sim{.request = {.id = static_cast<int64_t>(workload.jobs.size()) + 1,
                           .tenant_id = tenant->second,
                           .priority = job.priority,
                           .submit_s = job.submit_s - workload.shift_s,
                           .tasks = answer.tasks,
                           .oracle_remaining_s = *job.duration_s},
               .duration_s = *job.duration_s,
               .gpus = job.gpus,
               .trace_id = job.id};
    workload.jobs.push_back(std::move(sim));
  }
  return workload;
}

std::vector<EndedJob> EndedBefore(const Trace& trace, const JobSelection& selection,
                                  const Workload& workload) {
  const std::vector<TraceJob>& all = trace.jobs;
  size_t first = FirstSelected(trace, selection);
  std::unordered_map<std::string, int64_t> tenant_ids;
  for (size_t i = 0; i < workload.tenants.size(); ++i) {
    tenant_ids.emplace(workload.tenants[i], static_cast<int64_t>(i) + 1);
  }
  std::vector<EndedJob> ended;
  if (workload.jobs.empty()) return ended;
  for (size_t i = 0; i < first; ++i) {
    const TraceJob& job = all[i];
    if (!job.duration_s || job.submit_s + *job.duration_s > workload.shift_s) continue;
    auto [tenant, added] =
        tenant_ids.emplace(job.tenant, static_cast<int64_t>(tenant_ids.size()) + 1);
    ended.push_back(
        {.tenant_id = tenant->second, .gpus = job.gpus, .gpu_s = *job.duration_s * job.gpus});
  }
  return ended;
}

}  // namespace dlab::sim
