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

#include "absl/container/flat_hash_set.h"
#include "absl/numeric/int128.h"
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

// Remembers signatures while their request could still pass the time check; a signature seen
// twice is a replay. Signatures are kept by the minute of their signing time (a replay carries
// the same time), as 128 bits each, and a minute is dropped once every time in it is more than
// the skew in the past: memory follows the request rate over the last ~6 minutes, about 40 bytes
// a request (20,000 requests/s: ~300 MB). Thread-safe.
class ReplayCache {
 public:
  explicit ReplayCache(absl::Duration skew = kMaxClockSkew) : skew_(skew) {}
  // False when the signature was seen before; otherwise remembers it. signed_at is the
  // request's X-Dlab-Date, now the server's clock.
  bool CheckAndRemember(absl::string_view signature, absl::Time signed_at, absl::Time now);
  size_t size();

 private:
  std::mutex mu_;
  absl::Duration skew_;
  std::map<int64_t, absl::flat_hash_set<absl::uint128>> by_minute_;  // GUARDED_BY(mu_)
};

// The secret of an active access key, or nullopt for an unknown or revoked one.
using SecretLookup = std::function<std::optional<std::string>(absl::string_view key_id)>;

// Server side, in the order of docs/auth.md. Returns the key id; Unauthenticated otherwise.
absl::StatusOr<std::string> Verify(const RequestToSign& request, absl::string_view body,
                                   const SecretLookup& lookup, absl::Time now,
                                   ReplayCache* replays);

}  // namespace dlab::auth
