// The files through which LocalBackend (in dlabd) and dlab-shim share one attempt's state,
// inside the attempt directory, and the datagram the shim sends on progress. Plain functions
// on plain values; thread-safe as long as callers do not write the same file concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/file_util.h"

namespace dlab {

inline constexpr absl::string_view kLaunchFile = "launch.json";    // written by LocalBackend
inline constexpr absl::string_view kLockFile = "lock";             // flock held by the shim
inline constexpr absl::string_view kShimLogFile = "shim.log";      // the shim's own stderr
inline constexpr absl::string_view kShimPidFile = "shim.pid";      // the shim's pid, decimal
inline constexpr absl::string_view kStartedFile = "started.json";  // the command was exec'd
inline constexpr absl::string_view kExitFile = "exit.json";        // how the command ended

// One task (process) of an attempt.
struct TaskSpec {
  int rank = 0;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // overlaid on the attempt's env
  std::string log_path;                    // the task's own stdout and stderr
  int64_t cpu_millis = 0;                  // 0: no limit
  int64_t memory_bytes = 0;                // 0: no limit
  std::vector<int> gpus;
  bool auxiliary = false;  // stopped, not awaited, once every other task has succeeded
  std::string role;        // "" for `tasks: N` jobs (for the environment contract)
  int role_index = 0;
};

// Set by the Slurm backend for an attempt of several tasks: the shim runs each task as a job
// step (srun) on a node of its batch job's allocation, and fills in the host-dependent part of
// the environment contract (MASTER_ADDR, LOCAL_RANK, NODE_RANK, TF_CONFIG, the hostfile) from
// where Slurm put the tasks.
struct SlurmStepsSpec {
  std::string bin_dir;          // of srun and scancel; "": on PATH
  std::string gpu_type;         // "": untyped GPUs (--gres=gpu:N)
  int master_port = 0;          // on rank 0's node
  std::vector<int> task_ports;  // by rank, for role-based jobs (TF_CONFIG); else empty
  std::string hostfile;         // rewritten with the nodes' names
};

// Everything the shim needs to run one attempt.
struct LaunchSpec {
  int64_t job_id = 0;
  int attempt = 0;
  std::string workdir;
  std::map<std::string, std::string> env;  // overlaid on the shim's environment
  // The attempt's log. With one task it is that task's log; with several, the shim copies
  // every line of every task into it, prefixed "[rank N] ".
  std::string log_path;
  std::vector<TaskSpec> tasks;  // by rank
  int64_t max_runtime_ms = 0;   // 0: no limit
  int64_t kill_grace_ms = 10000;
  std::string notify_socket;                  // abstract unix socket name, without the leading NUL
  std::optional<SlurmStepsSpec> slurm_steps;  // unset: the shim forks the tasks itself
};

struct StartedRecord {
  int64_t pid = 0;  // of rank 0
  int64_t pgid = 0;
  std::vector<int64_t> task_pids;  // by rank; each task leads its own process group
  int64_t start_time_ms = 0;       // Unix epoch
  std::vector<std::string> limit_notes;
};

// How one task ended.
struct TaskExit {
  int rank = 0;
  int exit_code = 0;  // or 128+N when killed by signal N
  std::string signal;
  // exited, cancelled, max_runtime, oom_killed, stopped (by the shim, because another task
  // failed or, for an auxiliary task, because the others succeeded), exec_failed
  std::string end_reason;
};

struct ExitRecord {
  int exit_code = 0;
  std::string signal;      // "SIGKILL", or empty when the command exited by itself
  std::string end_reason;  // exited, cancelled, max_runtime, oom_killed, exec_failed
  std::string message;
  int64_t end_time_ms = 0;  // Unix epoch
  std::vector<std::string> limit_notes;
  std::vector<TaskExit> tasks;  // by rank; empty when no task started
  int failed_rank = -1;         // the task whose failure ended the attempt, if any
};

// dir + "/" + name.
std::string AttemptFile(absl::string_view dir, absl::string_view name);

// Atomic writes of the records as JSON (only the exit record is also fsynced: it is the one
// fact that must survive a machine crash); readers return NotFound when the file is missing and
// DataLoss when it cannot be parsed.
absl::Status WriteLaunchSpec(const std::string& path, const LaunchSpec& spec);
absl::StatusOr<LaunchSpec> ReadLaunchSpec(const std::string& path);
absl::Status WriteStartedRecord(const std::string& path, const StartedRecord& record);
absl::StatusOr<StartedRecord> ReadStartedRecord(const std::string& path);
absl::Status WriteExitRecord(const std::string& path, const ExitRecord& record);
absl::StatusOr<ExitRecord> ReadExitRecord(const std::string& path);

// The abstract-namespace socket name (without the leading NUL) on which the LocalBackend
// serving data_dir listens: "dlab-" + hex of a stable hash of the canonical path.
std::string NotifySocketName(absl::string_view canonical_data_dir);
// Sends attempt_dir as one datagram to the named socket. Best effort: errors are ignored,
// since dlabd may be down.
void SendNotification(absl::string_view socket_name, absl::string_view attempt_dir);

}  // namespace dlab
