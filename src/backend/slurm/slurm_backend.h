// The Slurm backend: each attempt is one Slurm batch job whose script runs dlab-shim on the
// attempt directory, which must be on a filesystem shared by dlabd and the compute nodes. The
// shim runs the tasks and records how they end, exactly as on the local backend (a gang's tasks
// each as a job step on the nodes Slurm allocated, see backend/local/slurm_steps.h); Slurm
// places the job, grants its CPUs, memory and GPUs, and enforces them. dlabd learns of
// progress by polling the attempt files and squeue, and reports an attempt whose job Slurm
// ended without a record from the shim as lost, with Slurm's reason (NODE_FAIL, TIMEOUT,
// PREEMPTED, OUT_OF_MEMORY, ...). Thread-safe, as Backend requires.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/backend.h"
#include "backend/slurm/slurm_commands.h"

namespace dlab {

struct SlurmBackendOptions {
  std::string shim_path;  // dlab-shim, at the same path on the compute nodes
  std::string data_dir;   // dlabd's data directory (shared with the compute nodes)
  SlurmOptions slurm;
  absl::Duration poll_interval = absl::Seconds(1);
  absl::Duration command_timeout = absl::Seconds(30);
};

// InvalidArgument when shim_path is not executable; Unavailable when Slurm does not answer
// (scontrol ping). The destructor never stops running attempts.
absl::StatusOr<std::unique_ptr<Backend>> NewSlurmBackend(SlurmBackendOptions options);

// The nodes of the configured partition (of every partition when none is configured).
// Unavailable when scontrol fails.
absl::StatusOr<std::vector<SlurmNode>> ListSlurmNodes(const SlurmOptions& options);

}  // namespace dlab
