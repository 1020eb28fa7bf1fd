// REST routes for training metrics and checkpoint records (see docs/rest-api.md, "Training
// metrics and checkpoints"): POST/GET /api/v1/jobs/{id}/metrics and POST/GET
// /api/v1/jobs/{id}/checkpoints; and GET /api/v1/jobs/{id}/code, the job's code snapshot for
// the job itself (Kubernetes pods fetch it with it). Writes are authenticated with the job's own
// token (a job reports about itself); reads are open like the rest of the job API. Handlers are
// stateless; everything they use is in MetricsApiContext, whose pointers must outlive the router.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "api/http_server.h"
#include "store/metrics_store.h"
#include "store/store.h"

namespace dlab {

struct MetricsApiContext {
  Store* store = nullptr;  // for 404 on unknown job ids
  MetricsStore* metrics = nullptr;
  // True when token is the job's own token (the server derives it). Unset: every write is
  // refused.
  std::function<bool(int64_t job_id, std::string_view token)> verify_job_token;
  // Reads (and a user's attempt to write): OK when the request's user may see the job;
  // Unauthenticated, or NotFound as for an unknown job, otherwise. Unset: every read is refused.
  std::function<absl::Status(const HttpRequest& req, int64_t job_id)> authorize_user;
  size_t max_report_bytes = 16 << 20;  // body limit of POST .../metrics
  // The job's code snapshot (a .tar.gz); NotFound when it has none. Unset: 404 for all.
  std::function<absl::StatusOr<std::string>(int64_t job_id)> job_code;
  // Told of each checkpoint a job records (the scheduler's victims lose the least work). Unset:
  // nobody is told.
  std::function<void(int64_t job_id)> on_checkpoint;
};

void RegisterMetricsRoutes(const MetricsApiContext& context, Router* router);

}  // namespace dlab
