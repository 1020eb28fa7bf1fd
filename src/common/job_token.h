// Job tokens: the credential a job's SDK sends with its reports (DLAB_TOKEN). A token is
// HMAC-SHA256(server secret, "dlab-job:<id>") in hex: nothing per job is stored, a token works
// for every attempt of its job and only for that job, and a copy of the database alone does
// not let anyone forge one. The secret lives in <data_dir>/secret (mode 0600), created on first
// start. Thread-safe after construction.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlab {

class JobTokens {
 public:
  // Reads the secret at path, creating it (32 random bytes, hex, 0600) when missing.
  static absl::StatusOr<JobTokens> LoadOrCreate(const std::string& path);
  explicit JobTokens(std::string secret) : secret_(std::move(secret)) {}

  std::string Token(int64_t job_id) const;
  // Constant-time comparison with the job's token.
  bool Verify(int64_t job_id, absl::string_view token) const;
  // The server's master secret (also the root of the key that seals access-key secrets).
  const std::string& secret() const { return secret_; }

 private:
  std::string secret_;
};

}  // namespace dlab
