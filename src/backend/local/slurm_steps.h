// What dlab-shim does inside a Slurm batch job for an attempt of several tasks (see
// SlurmStepsSpec): each task runs as a job step of its own (srun: one node, one task, the
// task's CPUs, memory and GPUs), ranks laid out in blocks over the nodes of the allocation in
// the order Slurm lists them (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE). Plain functions,
// tested without a cluster.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/local/attempt_files.h"

namespace dlab {

// A Slurm program's path: bin_dir/name, or name for a PATH lookup when bin_dir is empty.
std::string SlurmBinary(absl::string_view bin_dir, absl::string_view name);

// A Slurm host list: "n[1-3,07],gpu5" -> n1 n2 n3 n07 gpu5 (zero padding kept; several bracket
// groups in one name multiply out). InvalidArgument for unbalanced brackets or a bad range.
absl::StatusOr<std::vector<std::string>> ExpandSlurmHostlist(absl::string_view list);

// SLURM_TASKS_PER_NODE: "2(x3),1" -> 2 2 2 1. InvalidArgument when malformed.
absl::StatusOr<std::vector<int>> ExpandSlurmTasksPerNode(absl::string_view counts);

// The node of each of ntasks ranks: the first counts[0] ranks on the first node, and so on.
// InvalidArgument when the two lists disagree or hold fewer than ntasks slots.
absl::StatusOr<std::vector<std::string>> SlurmRankHosts(absl::string_view nodelist,
                                                        absl::string_view tasks_per_node,
                                                        int ntasks);

// The srun command line that starts one task as a step on host (the task's argv follows):
// one node, one task, exactly the task's CPUs, memory and GPUs (--gres=none without GPUs:
// otherwise a step gets every GPU of the job on its node), no stdin, srun's own chatter off.
std::vector<std::string> SrunCommand(const SlurmStepsSpec& steps, const TaskSpec& task,
                                     const std::string& host);

// srun reports a task killed by signal N as exit status 128+N: the wait status of a process
// killed by that signal, so that it is recorded as "killed by SIGN" as on the local backend.
// Other statuses are returned unchanged.
int SrunWaitStatus(int status);

}  // namespace dlab
