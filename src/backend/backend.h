// Backend: where attempts run. The local backend runs each attempt under a supervisor process
// (dlab-shim) that outlives dlabd; the Slurm backend runs the same supervisor as a Slurm batch
// job; the Kubernetes backend makes each attempt an Indexed Job with one pod per task.
// Implementations are thread-safe: Launch, Inspect and Cancel may be called from any thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/job.h"
#include "common/tasks.h"

namespace dlab {

// One task (process) of an attempt.
struct TaskLaunch {
  int rank = 0;
  std::vector<std::string> argv;           // argv[0] is looked up on PATH if it has no '/'
  std::map<std::string, std::string> env;  // overlaid on the request's env
  std::string log_path;                    // absolute; the task's stdout and stderr (appended)
  TaskAllocation allocation;               // CUDA_VISIBLE_DEVICES = allocation.gpus
  // Not awaited: once every other task has succeeded it is stopped and the attempt succeeds
  // (a TensorFlow parameter server never exits by itself).
  bool auxiliary = false;
  std::string role;    // "" for `tasks: N` jobs; else e.g. "ps", "worker"
  int role_index = 0;  // index within its role (== rank without roles)
};

// The largest share any of the tasks holds, CPUs, memory and GPUs each taken separately: what
// a cluster manager that sizes a gang's tasks alike gives every task. Its gpus lists no device,
// only as many entries as the most GPUs a task holds.
inline TaskAllocation LargestTaskShare(const std::vector<TaskLaunch>& tasks) {
  TaskAllocation largest;
  for (const TaskLaunch& t : tasks) {
    largest.cpu_millis = std::max(largest.cpu_millis, t.allocation.cpu_millis);
    largest.memory_bytes = std::max(largest.memory_bytes, t.allocation.memory_bytes);
    if (t.allocation.gpus.size() > largest.gpus.size())
      largest.gpus.resize(t.allocation.gpus.size());
  }
  return largest;
}

// The tasks of an attempt form a gang: they start together, and when one fails the others
// are stopped (SIGTERM, SIGKILL after kill_grace) and the attempt fails.
struct LaunchRequest {
  int64_t job_id = 0;
  int attempt = 0;
  std::string workdir;                     // absolute, exists
  std::map<std::string, std::string> env;  // overlaid on dlabd's own environment
  std::string attempt_dir;                 // absolute, exists, owned by this attempt
  // Absolute. With one task, its log_path is this. With several, every line of every task is
  // also written here, prefixed "[rank N] ".
  std::string log_path;
  std::vector<TaskLaunch> tasks;                      // by rank; at least one
  absl::Duration max_runtime = absl::ZeroDuration();  // zero: no limit
  absl::Duration kill_grace = absl::Seconds(10);      // SIGTERM -> SIGKILL
  // The type of every GPU the tasks hold, "" when they hold none or GPUs of several types: for
  // backends that ask a cluster manager for GPUs by type (Slurm's gpu:TYPE:N).
  std::string gpu_type;
  // What the job spec accepts ("H100,A100"; "" any): for backends that place attempts
  // themselves (Kubernetes' node affinity).
  std::string acceptable_gpu_types;
  int64_t tenant_id = 0;
  std::string snapshot;  // the job's code snapshot id ("" when it has none)
  std::string image;     // the job spec's image ("" : the backend's default)
  // Where dlab placed the tasks (hosts, MASTER_PORT, TF_CONFIG ports, hostfile) when it made
  // their environment; a backend whose cluster manager places them (Slurm) makes it again.
  GangPlacement placement;
};

enum class AttemptPhase {
  kStarting,  // supervisor alive, command not started yet
  kRunning,   // command started
  kExited,    // the supervisor recorded how the command ended
  kLost,      // no supervisor alive and nothing recorded (e.g. the machine rebooted)
};

struct AttemptStatus {
  AttemptPhase phase = AttemptPhase::kStarting;
  std::optional<int> exit_code;  // kExited: the exit status, or 128+N when killed by signal N
  std::string signal;            // kExited by a signal: "SIGKILL", "SIGTERM", ...
  // kExited: "exited", "cancelled", "max_runtime", "oom_killed", "exec_failed", or "lost" (the
  // cluster manager stopped the attempt: message says why); for a gang,
  // how the task that ended the attempt (failed_rank) ended.
  std::string end_reason;
  int failed_rank = -1;        // kExited: the task whose failure stopped the gang, if any
  std::vector<TaskEnd> tasks;  // kExited: how each task ended (role fields left empty)
  std::string message;         // human-readable detail, e.g. "exec: /x: No such file"
  std::optional<absl::Time> start_time;
  std::optional<absl::Time> end_time;
  // One line per resource limit: "cpu: 2 CPUs enforced (cgroup v2)",
  // "memory: not enforced: cgroup v1 memory controller not writable".
  std::vector<std::string> limit_notes;
};

// One machine a backend runs attempts on, as the backend describes it.
struct BackendNode {
  struct Gpu {
    int index = 0;
    std::string type;   // what jobs ask for in gpu_type, e.g. "H100" (Slurm: the gres type)
    std::string model;  // e.g. "NVIDIA H100 80GB HBM3"
  };
  std::string name;
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  std::vector<Gpu> gpus;
  // What the cluster manager says is in use and the node's state; the local backend leaves
  // them empty (dlab's own scheduler holds that account).
  int64_t cpu_millis_used = 0;
  int64_t memory_bytes_used = 0;
  std::string state;  // e.g. Slurm's IDLE, MIXED, ALLOCATED, DOWN+NOT_RESPONDING
};

class Backend {
 public:
  virtual ~Backend() = default;

  // The machines attempts may run on (the local backend: this one). Unavailable when the
  // cluster manager does not answer.
  virtual absl::StatusOr<std::vector<BackendNode>> Inventory() = 0;

  // Whether a job could ever run here, as far as this backend is concerned (resources against
  // the nodes are checked by dlab's scheduler): InvalidArgument naming the spec field, e.g.
  // "image: ..." on Kubernetes when neither the spec nor the backend names an image.
  virtual absl::Status Validate(const JobSpec& spec) {
    (void)spec;
    return absl::OkStatus();
  }

  // Starts the supervisor of one attempt and returns once it is spawned; it does not wait
  // for the command. Internal if the supervisor cannot be spawned.
  virtual absl::Status Launch(const LaunchRequest& request) = 0;

  // Reads what the supervisor of the attempt in attempt_dir has recorded.
  // NotFound if attempt_dir has never been launched.
  virtual absl::StatusOr<AttemptStatus> Inspect(const std::string& attempt_dir) = 0;

  // Stops the attempt: SIGTERM to its processes, SIGKILL after kill_grace. Idempotent; OK when
  // the attempt has already ended. For a kLost attempt, kills whatever is left of its
  // processes, so that a restart never runs beside the remains of the attempt before it.
  virtual absl::Status Cancel(const std::string& attempt_dir) = 0;

  // fn is called, on a backend thread, with the attempt_dir of an attempt whose supervisor
  // reported progress (command started, command ended, supervisor exited). Set once, before
  // the first Launch.
  virtual void SetListener(std::function<void(const std::string& attempt_dir)> fn) = 0;
};

}  // namespace dlab
