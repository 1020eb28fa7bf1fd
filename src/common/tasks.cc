#include "common/tasks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace dlab {

std::vector<TaskInfo> ExpandTasks(const JobSpec& spec) {
  std::vector<TaskInfo> tasks;
  if (spec.task_groups.empty()) {
    tasks.push_back({.rank = 0, .resources = spec.resources, .command = spec.command});
    return tasks;
  }
  for (const TaskGroup& g : spec.task_groups) {
    for (int i = 0; i < g.count; ++i) {
      tasks.push_back({.rank = static_cast<int>(tasks.size()),
                       .role = g.role,
                       .role_index = i,
                       .resources = g.resources.value_or(spec.resources),
                       .command = g.command.empty() ? spec.command : g.command});
    }
  }
  return tasks;
}

int TaskCount(const JobSpec& spec) {
  if (spec.task_groups.empty()) return 1;
  int n = 0;
  for (const TaskGroup& g : spec.task_groups) n += g.count;
  return n;
}

std::string HostfileText(const std::vector<std::string>& hosts) {
  std::vector<std::pair<std::string, int>> slots;
  for (const std::string& h : hosts) {
    auto it = std::find_if(slots.begin(), slots.end(), [&](const auto& s) { return s.first == h; });
    if (it == slots.end()) {
      slots.emplace_back(h, 1);
    } else {
      ++it->second;
    }
  }
  std::string out;
  for (const auto& [host, n] : slots) absl::StrAppend(&out, host, " slots=", n, "\n");
  return out;
}

std::string TfConfig(const std::vector<TaskInfo>& tasks, const GangPlacement& placement, int rank) {
  nlohmann::json cluster = nlohmann::json::object();
  for (const TaskInfo& t : tasks) {
    int port =
        t.rank < static_cast<int>(placement.task_ports.size()) ? placement.task_ports[t.rank] : 0;
    cluster[t.role].push_back(absl::StrCat(placement.hosts[t.rank], ":", port));
  }
  const TaskInfo& self = tasks[rank];
  nlohmann::json config = {{"cluster", cluster},
                           {"task", {{"type", self.role}, {"index", self.role_index}}}};
  return config.dump();
}

std::vector<std::map<std::string, std::string>> TaskEnvironments(const std::vector<TaskInfo>& tasks,
                                                                 const GangPlacement& placement) {
  // Nodes in order of their first rank; local ranks in rank order on each node.
  std::vector<std::string> nodes;
  std::map<std::string, int> per_node;
  std::vector<int> local_rank(tasks.size());
  for (size_t r = 0; r < tasks.size(); ++r) {
    const std::string& host = placement.hosts[r];
    if (!per_node.contains(host)) nodes.push_back(host);
    local_rank[r] = per_node[host]++;
  }
  bool roles = !tasks.empty() && !tasks[0].role.empty();
  std::vector<std::map<std::string, std::string>> out;
  for (size_t r = 0; r < tasks.size(); ++r) {
    const std::string& host = placement.hosts[r];
    std::map<std::string, std::string> env;
    env["RANK"] = absl::StrCat(r);
    env["LOCAL_RANK"] = absl::StrCat(local_rank[r]);
    env["WORLD_SIZE"] = absl::StrCat(tasks.size());
    env["LOCAL_WORLD_SIZE"] = absl::StrCat(per_node[host]);
    env["NODE_RANK"] = absl::StrCat(std::find(nodes.begin(), nodes.end(), host) - nodes.begin());
    env["MASTER_ADDR"] = placement.hosts[0];
    env["MASTER_PORT"] = absl::StrCat(placement.master_port);
    env["DLAB_TASK_ROLE"] = tasks[r].role;
    env["DLAB_TASK_INDEX"] = absl::StrCat(tasks[r].role_index);
    env["DLAB_HOSTFILE"] = placement.hostfile;
    env["CUDA_VISIBLE_DEVICES"] =
        r < placement.gpus.size() ? absl::StrJoin(placement.gpus[r], ",") : "";
    if (roles) env["TF_CONFIG"] = TfConfig(tasks, placement, static_cast<int>(r));
    out.push_back(std::move(env));
  }
  return out;
}

}  // namespace dlab
