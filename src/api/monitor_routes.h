// The REST API of monitoring (docs/monitoring.md): GET /api/v1/telemetry (this node's GPUs and
// host over the window), GET /api/v1/alerts (incidents firing, recent transitions) and
// GET /api/v1/nodes (the backend's nodes and what is in use on them). Any signed-in user of a
// tenant may read them (the console's cluster page, `dlab top`).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/auth_gate.h"
#include "api/http_server.h"
#include "backend/backend.h"
#include "monitor/monitor_service.h"

namespace dlab {

struct MonitorApiContext {
  AuthGate* gate = nullptr;
  MonitorService* monitor = nullptr;
  std::string backend = "local";  // its type: local, slurm, kubernetes
  // The backend's nodes, with the CPUs and memory in use filled in where anyone knows them
  // (the cluster manager, or dlab's own account on the local backend). Unset: no nodes.
  std::function<absl::StatusOr<std::vector<BackendNode>>()> inventory;
  // GPU index -> the running job holding it, on the local backend's node (others: empty).
  std::function<std::map<int, int64_t>()> gpu_holders;
};

void RegisterMonitorRoutes(const MonitorApiContext& context, Router* router);

}  // namespace dlab
