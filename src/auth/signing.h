// Signed requests (docs/auth.md): the canonical request, the string to sign, the Authorization
// header, and the server-side check (time window, body hash, key lookup, constant-time
// comparison, replay). Pure functions except ReplayCache, which is thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/sha256.h"      // Sha256Hex, HmacSha256Hex
#include "common/uri_encode.h"  // UriEncode

namespace dlab::auth {

inline constexpr absl::string_view kScheme = "DLAB-HMAC-SHA256";
inline constexpr absl::string_view kDateHeader = "x-dlab-date";
inline constexpr absl::string_view kBodyHashHeader = "x-dlab-content-sha256";
inline constexpr absl::Duration kMaxClockSkew = absl::Minutes(5);

// A request as both sides see it: path and query percent-decoded, header names lower case.
struct RequestToSign {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  std::map<std::string, std::string> headers;
};

// The six-part canonical request of docs/auth.md; signed_headers sorted, lower case, and all
// present in request.headers (missing ones sign as empty values).
std::string CanonicalRequest(const RequestToSign& request,
                             const std::vector<std::string>& signed_headers);
std::string StringToSign(absl::string_view date, absl::string_view canonical_request);

// "20261122T101500Z".
std::string FormatSigningTime(absl::Time t);
absl::StatusOr<absl::Time> ParseSigningTime(absl::string_view text);

struct Authorization {
  std::string key_id;
  std::vector<std::string> signed_headers;
  std::string signature;
};
// Parses "DLAB-HMAC-SHA256 Credential=K, SignedHeaders=a;b, Signature=hex". Unauthenticated
// with a message saying what is wrong.
absl::StatusOr<Authorization> ParseAuthorization(absl::string_view header);

// Client side: sets x-dlab-date, x-dlab-content-sha256 (of body) and authorization on
// request.headers, signing host, those two and any header named in also_sign.
void SignRequest(RequestToSign* request, absl::string_view body, absl::string_view key_id,
                 absl::string_view secret, absl::Time now,
                 const std::vector<std::string>& also_sign = {});

// Remembers signatures for the signing window; a signature seen twice is a replay.
class ReplayCache {
 public:
  explicit ReplayCache(absl::Duration window = 2 * kMaxClockSkew) : window_(window) {}
  // False when signature was seen within the window; otherwise remembers it.
  bool CheckAndRemember(absl::string_view signature, absl::Time now);
  size_t size();

 private:
  std::mutex mu_;
  absl::Duration window_;
  std::map<std::string, absl::Time> seen_;          // GUARDED_BY(mu_)
  std::multimap<absl::Time, std::string> by_time_;  // GUARDED_BY(mu_)
};

// The secret of an active access key, or nullopt for an unknown or revoked one.
using SecretLookup = std::function<std::optional<std::string>(absl::string_view key_id)>;

// Server side, in the order of docs/auth.md. Returns the key id; Unauthenticated otherwise.
absl::StatusOr<std::string> Verify(const RequestToSign& request, absl::string_view body,
                                   const SecretLookup& lookup, absl::Time now,
                                   ReplayCache* replays);

}  // namespace dlab::auth
