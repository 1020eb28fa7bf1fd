// The job domain: states, the job spec as submitted by a user, and an allocation on a node.
// Plain value types, no behaviour beyond conversions; safe to copy between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace dlab {

enum class JobState {
  kQueued,
  kStarting,
  kRunning,
  kSucceeded,
  kFailed,
  kCancelled,
  kPreempted,
  kRestarting
};

// "QUEUED", "RUNNING", ... as used in the API, the store and the CLI.
std::string_view JobStateName(JobState s);
std::optional<JobState> ParseJobState(std::string_view name);
bool IsTerminal(JobState s);
// Every state, in lifecycle order.
const std::vector<JobState>& AllJobStates();

struct Resources {
  int64_t cpu_millis = 1000;         // "2" = 2000, "500m" = 500
  int64_t memory_bytes = 1LL << 30;  // "4Gi"
  int gpus = 0;
  std::string gpu_type;  // empty: any type; "H100,A100": any of these
  bool operator==(const Resources&) const = default;
};

// One group of alike tasks of a distributed job: `tasks: 4` is one group without a role;
// `tasks: {ps: 1, worker: 2}` is one group per role (ranks follow the roles in name order).
struct TaskGroup {
  std::string role;  // empty for `tasks: N`
  int count = 1;
  std::optional<Resources> resources;  // per task; unset: the job's resources
  std::vector<std::string> command;    // empty: the job's command
  bool shell = false;
  bool operator==(const TaskGroup&) const = default;
};

struct JobSpec {
  std::string name;
  std::vector<std::string> command;  // argv; a shell string becomes {"/bin/sh", "-c", s}
  bool shell = false;                // true when command was given as one string
  std::string workdir = ".";         // relative to the code snapshot root
  std::map<std::string, std::string> env;
  Resources resources;
  int priority = 0;
  absl::Duration max_runtime = absl::ZeroDuration();  // zero: no limit
  int max_restarts = 0;
  std::map<std::string, std::string> labels;
  // Empty: one task. Otherwise the tasks of every attempt, started and stopped as one gang.
  std::vector<TaskGroup> task_groups;
  // Delay before the first restart; doubles with each consecutive failed attempt (max 5 min).
  absl::Duration restart_backoff = absl::Seconds(1);
  // Infrastructure failures (lost supervisor, OOM kill, killed from outside) are retried
  // without counting against max_restarts, up to this many times.
  int max_infra_restarts = 10;
  // A higher-priority job (or a fairer share, or less attained service, by the scheduling
  // policy) may stop it and requeue it to resume from its latest checkpoint.
  bool preemptible = true;
  // The container image the tasks run in on the Kubernetes backend ("" : the backend's
  // configured default). The local and Slurm backends run on the host and ignore it.
  std::string image;
};

// The resources of one task of an attempt, on its node.
struct TaskAllocation {
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  std::vector<int> gpus;  // device indices on the node
  // Which of the scheduler's nodes (by index) the task was placed on: always 0 on the local
  // backend; on Slurm and Kubernetes dlab admits against every node, and their manager places.
  int node = 0;
};

// What the scheduler handed to one attempt on this machine: the totals, and each task's share.
struct Allocation {
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  std::vector<int> gpus;              // device indices on the node, of all tasks
  std::vector<TaskAllocation> tasks;  // by rank; empty in records written before gangs
  std::vector<int> ports;             // held for the attempt: MASTER_PORT first, then per task
};

// A checkpoint an attempt resumed from.
struct CheckpointRef {
  int64_t id = 0;
  int64_t step = 0;
  std::string path;
  bool operator==(const CheckpointRef&) const = default;
};

// How one task of an attempt ended.
struct TaskEnd {
  int rank = 0;
  std::string role;
  int role_index = 0;
  std::optional<int> exit_code;
  std::string signal;      // "SIGKILL" when killed by a signal
  std::string end_reason;  // exited, cancelled, stopped (the gang was stopped), oom_killed, ...
  bool operator==(const TaskEnd&) const = default;
};

}  // namespace dlab
