// The local backend: runs each attempt on this machine under its own dlab-shim supervisor,
// which outlives dlabd; state lives in files of the attempt directory, so a restarted dlabd
// picks up where the last one left off. Thread-safe, as Backend requires.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backend/backend.h"

namespace dlab {

struct LocalBackendOptions {
  std::string shim_path;  // the dlab-shim executable
  std::string data_dir;   // dlabd's data directory; created if missing; names the notify socket
  BackendNode node;       // this machine, as Inventory reports it (see node_resources.h)
};

// InvalidArgument when shim_path is not executable; Internal when data_dir cannot be created or
// the notification socket cannot be set up; FailedPrecondition when another LocalBackend
// (another dlabd) already serves data_dir. The backend's destructor never stops running
// attempts.
absl::StatusOr<std::unique_ptr<Backend>> NewLocalBackend(LocalBackendOptions options);

}  // namespace dlab
