// The REST API of monitoring (docs/monitoring.md): GET /api/v1/telemetry (this node's GPUs and
// host over the window) and GET /api/v1/alerts (incidents firing, recent transitions). Any
// signed-in user of a tenant may read them (the console's cluster page).
#pragma once

#include "api/auth_gate.h"
#include "api/http_server.h"
#include "monitor/monitor_service.h"

namespace dlab {

struct MonitorApiContext {
  AuthGate* gate = nullptr;
  MonitorService* monitor = nullptr;
};

void RegisterMonitorRoutes(const MonitorApiContext& context, Router* router);

}  // namespace dlab
