// The supervisor of one attempt, the body of dlab-shim: runs the command of attempt_dir/launch.json
// in its own process group and cgroup, enforces cancel and max_runtime, and records started.json
// and exit.json. Owns the process's signal mask and children: call once, from a single thread.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace dlab {

struct SupervisorOptions {
  std::string attempt_dir;
  // An fd holding flock(LOCK_EX) on attempt_dir/lock, inherited from dlabd; released when the
  // supervisor exits, after exit.json is written. -1: none.
  int lock_fd = -1;
  std::string cgroup_root = "/sys/fs/cgroup";
  bool disable_cgroups = false;  // dlab-shim sets it from DLAB_NO_CGROUPS=1
};

// Runs the attempt to its end. The outcome of the command (including exec failure) is recorded
// in exit.json and is not an error here; returns an error only when nothing could be recorded
// (e.g. launch.json unreadable and exit.json unwritable).
absl::Status RunSupervisor(const SupervisorOptions& options);

}  // namespace dlab
