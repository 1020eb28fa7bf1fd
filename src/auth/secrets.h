// Credentials at rest. Passwords: scrypt (OpenSSL), so a stolen database costs an attacker
// ~32 MiB and tens of milliseconds per guess. Access-key secrets must stay usable for HMAC
// verification, so they cannot be hashed: they are sealed with AES-256-GCM under a key derived
// from the server's master secret (<data_dir>/secret, outside the database), so a copy of the
// database alone does not let anyone sign requests. Thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlab::auth {

// "scrypt$15$8$1$<salt, base64>$<key, base64>": log2(N), r, p, a 16-byte salt, a 32-byte key.
std::string HashPassword(absl::string_view password);
// Constant-time comparison; false for a malformed encoding as well.
bool VerifyPassword(absl::string_view password, absl::string_view encoded);

class SecretBox {
 public:
  // The sealing key is HMAC-SHA256(master, "dlab secret box v1").
  explicit SecretBox(absl::string_view master_secret);
  // "v1:" + base64(12-byte nonce | ciphertext | 16-byte tag).
  std::string Seal(absl::string_view plaintext) const;
  // DataLoss when sealed was altered or sealed under another master secret.
  absl::StatusOr<std::string> Open(absl::string_view sealed) const;

 private:
  std::string key_;  // 32 bytes
};

struct AccessKey {
  std::string id;      // "AK" + 18 characters A-Z0-9: shown always
  std::string secret;  // 40 characters of base64url: shown once
};
AccessKey NewAccessKey();
// "AK" and 18 of A-Z 0-9.
bool IsAccessKeyId(absl::string_view id);
// n random bytes as base64url without padding.
std::string RandomToken(size_t n);

}  // namespace dlab::auth
