// The composition root of dlabd: opens the store, discovers the node, wires the local backend,
// the job controller and the HTTP API together, and serves until SIGINT/SIGTERM.
#pragma once

#include "absl/status/status.h"
#include "server/config.h"

namespace dlab {

// Blocks until SIGINT or SIGTERM. Running attempts keep running after it returns.
// FailedPrecondition/Unavailable/InvalidArgument with a message for the operator when the data
// directory is unusable, the port is taken, or another dlabd serves the data directory.
absl::Status RunServer(const ServerConfig& config);

}  // namespace dlab
