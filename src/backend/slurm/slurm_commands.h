// The Slurm command lines the Slurm backend runs and what it reads from their output, as plain
// functions (tested without a cluster). See docs/deploy-slurm.md for why the command-line
// tools and not slurmrestd.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/backend.h"

namespace dlab {

// Where attempts go: from the `slurm:` section of the configuration.
struct SlurmOptions {
  std::string partition;  // "": the cluster's default partition
  std::string account;    // "": the user's default account
  std::string qos;        // "": the default QOS
  std::string bin_dir;    // where sbatch, squeue, scancel and scontrol are; "": on PATH
  // Where slurmrestd listens, to submit through it instead of running sbatch for each attempt:
  // "unix:/run/slurmrestd.sock" (rest_auth/local: dlabd's own user) or "http(s)://host:port"
  // (JWT: rest_token_file and rest_user). "": sbatch. squeue, scancel and scontrol are run
  // either way.
  std::string rest_url;
  std::string rest_token_file;  // holds a JWT (scontrol token), read before each request
  std::string rest_user;        // X-SLURM-USER-NAME with a token; "": dlabd's user
};

// One node as `scontrol show node --oneliner` describes it.
struct SlurmNode {
  std::string name;
  int cpus = 0;              // CPUTot
  int64_t memory_mb = 0;     // RealMemory
  int gpus = 0;              // from Gres=gpu[:TYPE]:N[(S:...)], summed over types
  std::string gpu_type;      // the type of its GPUs ("" when untyped or several types)
  int cpus_alloc = 0;        // CPUAlloc
  int64_t alloc_mem_mb = 0;  // AllocMem
  std::string state;         // IDLE, MIXED, ALLOCATED, DOWN+NOT_RESPONDING, DRAIN, ...
  std::vector<std::string> partitions;
};

// The nodes in `scontrol show node --oneliner` output (one "NodeName=..." line each).
// InvalidArgument naming the line when a node has no CPUTot or RealMemory.
absl::StatusOr<std::vector<SlurmNode>> ParseSlurmNodes(absl::string_view text);

// The program's path: bin_dir/name, or name for a PATH lookup.
std::string SlurmProgram(const SlurmOptions& options, absl::string_view name);

// The batch script of an attempt: it runs dlab-shim on the attempt directory (on the shared
// filesystem), without cgroups of its own (Slurm enforces the limits), and tells it which GPUs
// Slurm granted (CUDA_VISIBLE_DEVICES) so that each task gets its share of them.
std::string SlurmBatchScript(const std::string& shim_path, const std::string& attempt_dir);

// The Slurm job name of an attempt: "dlab-TAG-JOB-ATTEMPT", TAG telling this dlabd's jobs from
// another's on the same cluster (a hash of its data directory).
std::string SlurmJobName(absl::string_view tag, int64_t job_id, int attempt);

// What an attempt asks Slurm for: for one task, one node and one Slurm task (the shim, which
// runs it) with the task's CPUs, memory and GPUs; for several, one Slurm task per task (the
// largest task's share each: CPUs, memory per CPU, GPUs per task), placed by Slurm on one node
// or several, each run by the shim as a job step (see slurm_steps.h). GPUs typed when
// request.gpu_type is set; max_runtime plus kill_grace plus a minute as the time limit.
struct SlurmJobResources {
  bool one_node = false;
  int tasks = 1;
  int64_t cpus_per_task = 1;
  int64_t memory_mb = 0;          // per node (one task); 0: not asked
  int64_t memory_mb_per_cpu = 0;  // a gang's; 0: not asked
  int gpus = 0;                   // of the one task, or per task of a gang
  std::string gpu_type;           // "": any
  int64_t time_minutes = 0;       // 0: no limit asked
  std::string Gres() const;         // "gpu:N" or "gpu:TYPE:N"
  std::string GpusPerTask() const;  // "N" or "TYPE:N"
};
SlurmJobResources SlurmResources(const LaunchRequest& request);

// sbatch's command line for the attempt: SlurmResources as options (--nodes=1, --ntasks,
// --cpus-per-task, --mem or --mem-per-cpu, --gres=gpu[:TYPE]:N for one task or
// --gpus-per-task for a gang, --time), no requeue by Slurm (dlab restarts attempts itself),
// output to attempt_dir/shim.log, and the configured partition, account and QOS.
std::vector<std::string> SbatchCommand(const LaunchRequest& request, const SlurmOptions& options,
                                       const std::string& job_name, const std::string& script_path);

// The same submission as slurmrestd's JSON body (POST /slurm/v0.0.38/job/submit): the batch
// script's text, and `environment` (sbatch's default --export=ALL passes dlabd's own; slurmrestd
// passes only what it is given).
std::string SlurmRestSubmitBody(const LaunchRequest& request, const SlurmOptions& options,
                                const std::string& job_name, const std::string& script,
                                const std::map<std::string, std::string>& environment);

// The job id in slurmrestd's answer to a submit; Unavailable with Slurm's error otherwise
// (e.g. "Requested node configuration is not available").
absl::StatusOr<int64_t> ParseSlurmRestSubmit(long http_status, absl::string_view body);

// The job id in `sbatch --parsable` output ("123" or "123;cluster"). InvalidArgument otherwise.
absl::StatusOr<int64_t> ParseSbatchJobId(absl::string_view out);

// What a Slurm job state (squeue's %T, e.g. "RUNNING", "NODE_FAIL") means for an attempt
// whose supervisor has not recorded an exit.
struct SlurmStateMeaning {
  bool active = false;   // queued or running: the supervisor may still record something
  bool pending = false;  // not started yet
  // Slurm (or an operator through it) ended the job: NODE_FAIL, TIMEOUT, PREEMPTED,
  // OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, CANCELLED.
  bool stopped_by_slurm = false;
  std::string lost;  // when not active: why the attempt was lost, for its record
};
SlurmStateMeaning InterpretSlurmState(absl::string_view state);

// Each "JOBID STATE" line of `squeue --noheader --format='%i %T'`, by job id.
std::vector<std::pair<int64_t, std::string>> ParseSqueueStates(absl::string_view out);

}  // namespace dlab
