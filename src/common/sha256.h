// SHA-256 over data given in pieces, and the content address of a code snapshot
// ("sha256:<64 lower-case hex>") computed from it; one-shot SHA-256 and HMAC-SHA256.
// Not thread-safe per Sha256 object; the free functions are.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

struct evp_md_ctx_st;

namespace dlab {

class Sha256 final {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view data);
  // "sha256:<hex>" of everything passed to Update. Call once.
  std::string SnapshotId();

 private:
  evp_md_ctx_st* ctx_;
};

// "sha256:<hex>" of data.
std::string SnapshotIdOf(absl::string_view data);

// Lower-case hex SHA-256 of data.
std::string Sha256Hex(absl::string_view data);
// HMAC-SHA256 of message under key: 32 raw bytes, or as lower-case hex.
std::string HmacSha256(absl::string_view key, absl::string_view message);
std::string HmacSha256Hex(absl::string_view key, absl::string_view message);

}  // namespace dlab
