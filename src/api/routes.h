// The REST API /api/v1 (see docs/rest-api.md and api/openapi.yaml): request parsing and
// validation, JSON rendering of jobs, attempts, events and the queue, log streams (SSE), /healthz
// and /metrics. Jobs and snapshots belong to tenants: a caller sees its tenant's (a superadmin
// every tenant's), and another tenant's object answers 404 as if it did not exist. Handlers are
// stateless; everything they use is in ApiContext.
#pragma once

#include <cstdint>
#include <functional>

#include "api/auth_gate.h"
#include "api/http_server.h"
#include "api/metrics.h"
#include "sched/job_controller.h"
#include "store/snapshot_store.h"
#include "store/store.h"

namespace dlab {

struct ApiContext {
  Store* store = nullptr;
  SnapshotStore* snapshots = nullptr;
  JobController* controller = nullptr;
  Metrics* metrics = nullptr;
  AuthGate* gate = nullptr;                    // every /api/v1 route goes through it
  size_t max_request_bytes = 1 << 20;          // job submissions and other JSON bodies
  size_t max_snapshot_bytes = 512ull << 20;    // code snapshot uploads
  std::function<std::string()> extra_metrics;  // appended to /metrics (telemetry, alerts)
  // A count that grows whenever a job changes (CountingStore::changes): GET /api/v1/jobs with
  // watch=true queries again only when it moved. Unset: it queries every poll.
  std::function<uint64_t()> job_changes;
};

void RegisterRoutes(const ApiContext& context, Router* router);

// The job if the caller may see it; NotFound (the same as for an unknown id) otherwise.
absl::StatusOr<JobRecord> VisibleJob(Store* store, const Caller& caller, int64_t job_id);

}  // namespace dlab
