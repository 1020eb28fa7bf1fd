// Submitting batch jobs through slurmrestd (Slurm's REST API, the v0.0.38 paths of Slurm
// 22.05-23.11) instead of a sbatch process per attempt: one HTTP request on a kept-alive
// connection (see docs/deploy-slurm.md for when this pays).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/slurm/slurm_commands.h"

namespace dlab {

struct SlurmRestResponse {
  long status = 0;  // HTTP status
  std::string body;
};

// One connection to slurmrestd at options.rest_url. Not thread-safe: one per thread.
class SlurmRestClient {
 public:
  SlurmRestClient(const SlurmOptions& options, absl::Duration timeout);
  ~SlurmRestClient();
  SlurmRestClient(const SlurmRestClient&) = delete;
  SlurmRestClient& operator=(const SlurmRestClient&) = delete;

  // path: "/slurm/v0.0.38/...". Unavailable when slurmrestd cannot be reached (or the token
  // file cannot be read); any HTTP status is a response.
  absl::StatusOr<SlurmRestResponse> Request(const std::string& method, const std::string& path,
                                            const std::string& body = "");

  // Submits a body from SlurmRestSubmitBody; the job id.
  absl::StatusOr<int64_t> Submit(const std::string& body);

  // slurmrestd answers, serves API v0.0.38 and reaches slurmctld. Unavailable saying which
  // of these fails.
  absl::Status Ping();

 private:
  struct Handle;
  const SlurmOptions options_;
  const absl::Duration timeout_;
  std::unique_ptr<Handle> handle_;
};

}  // namespace dlab
