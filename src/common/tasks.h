// The tasks of a job and the environment contract each of them sees (docs/job-spec.md, "What
// the job sees"): one place that maps a job spec and a placement of its tasks onto RANK,
// WORLD_SIZE, MASTER_ADDR, TF_CONFIG, ... so that every backend (local, Slurm, Kubernetes)
// gives workloads the same variables. Pure functions, thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/job.h"

namespace dlab {

// One task of an attempt, in rank order.
struct TaskInfo {
  int rank = 0;
  std::string role;    // empty for `tasks: N` jobs
  int role_index = 0;  // index within its role (== rank without roles)
  Resources resources;
  std::vector<std::string> command;
};

// The job's tasks by rank: roles in the order of spec.task_groups, each role's tasks in order.
std::vector<TaskInfo> ExpandTasks(const JobSpec& spec);
int TaskCount(const JobSpec& spec);

// Where the tasks of one attempt run.
struct GangPlacement {
  std::vector<std::string> hosts;      // by rank: host name or address other tasks can reach
  int master_port = 0;                 // on hosts[0]
  std::vector<int> task_ports;         // by rank, for role-based jobs (TF_CONFIG); else empty
  std::vector<std::vector<int>> gpus;  // by rank: device indices on its node
  std::string hostfile;                // path of the MPI hostfile, written by the backend
};

// The distributed part of the contract for each task, by rank: RANK, LOCAL_RANK, WORLD_SIZE,
// LOCAL_WORLD_SIZE, NODE_RANK, MASTER_ADDR, MASTER_PORT, DLAB_TASK_ROLE, DLAB_TASK_INDEX,
// DLAB_HOSTFILE, CUDA_VISIBLE_DEVICES and, for role-based jobs, TF_CONFIG.
std::vector<std::map<std::string, std::string>> TaskEnvironments(const std::vector<TaskInfo>& tasks,
                                                                 const GangPlacement& placement);

// An OpenMPI/Horovod hostfile: one "HOST slots=N" line per host, in first-rank order.
std::string HostfileText(const std::vector<std::string>& hosts);

// The TF_CONFIG of one task: {"cluster": {role: ["host:port", ...]}, "task": {"type", "index"}}.
std::string TfConfig(const std::vector<TaskInfo>& tasks, const GangPlacement& placement, int rank);

}  // namespace dlab
