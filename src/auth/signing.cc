#include "auth/signing.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"

namespace dlab::auth {
namespace {

absl::Status Unauthenticated(absl::string_view message) {
  return absl::UnauthenticatedError(message);
}

// Trims spaces and tabs and collapses inner runs of them to one space.
std::string CanonicalHeaderValue(absl::string_view value) {
  std::string out;
  bool space = false;
  for (char c : absl::StripAsciiWhitespace(value)) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

bool IsLowerHex(absl::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string CanonicalRequest(const RequestToSign& request,
                             const std::vector<std::string>& signed_headers) {
  std::vector<std::string> segments;
  for (absl::string_view segment : absl::StrSplit(request.path, '/')) {
    segments.push_back(UriEncode(segment));
  }
  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [name, value] : request.query)
    query.emplace_back(UriEncode(name), UriEncode(value));
  std::sort(query.begin(), query.end());
  std::vector<std::string> headers;
  for (const std::string& name : signed_headers) {
    auto it = request.headers.find(name);
    headers.push_back(absl::StrCat(
        name, ":", CanonicalHeaderValue(it == request.headers.end() ? "" : it->second)));
  }
  auto body_hash = request.headers.find(std::string(kBodyHashHeader));
  return absl::StrJoin({absl::AsciiStrToUpper(request.method), absl::StrJoin(segments, "/"),
                        absl::StrJoin(query, "&", absl::PairFormatter("=")),
                        absl::StrJoin(headers, "\n"), absl::StrJoin(signed_headers, ";"),
                        body_hash == request.headers.end() ? std::string() : body_hash->second},
                       "\n");
}

std::string StringToSign(absl::string_view date, absl::string_view canonical_request) {
  return absl::StrCat(kScheme, "\n", date, "\n", Sha256Hex(canonical_request));
}

std::string FormatSigningTime(absl::Time t) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseSigningTime(absl::string_view text) {
  // Fixed fields (absl::ParseTime's %Y would swallow the month and day digits).
  auto error = [&] {
    return Unauthenticated(absl::StrCat("X-Dlab-Date: '", text.substr(0, 40),
                                        "' is not a time like 20261122T101500Z"));
  };
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return error();
  auto number = [&](size_t pos, size_t len, int* out) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (!absl::ascii_isdigit(text[i])) return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!number(0, 4, &y) || !number(4, 2, &mo) || !number(6, 2, &d) || !number(9, 2, &h) ||
      !number(11, 2, &mi) || !number(13, 2, &sec)) {
    return error();
  }
  absl::CivilSecond civil(y, mo, d, h, mi, sec);
  if (civil.year() != y || civil.month() != mo || civil.day() != d || civil.hour() != h ||
      civil.minute() != mi || civil.second() != sec) {
    return error();  // e.g. month 13: CivilSecond would have normalized it
  }
  return absl::FromCivil(civil, absl::UTCTimeZone());
}

absl::StatusOr<Authorization> ParseAuthorization(absl::string_view header) {
  absl::string_view rest = absl::StripAsciiWhitespace(header);
  if (rest.empty()) return Unauthenticated("unsigned request: no Authorization header");
  if (!absl::ConsumePrefix(&rest, kScheme) || rest.empty() || !absl::ascii_isspace(rest[0])) {
    return Unauthenticated(
        absl::StrCat("malformed Authorization header: the scheme must be ", kScheme));
  }
  Authorization out;
  bool have_credential = false, have_headers = false, have_signature = false;
  for (absl::string_view field : absl::StrSplit(rest, ',')) {
    field = absl::StripAsciiWhitespace(field);
    size_t eq = field.find('=');
    if (eq == absl::string_view::npos) {
      return Unauthenticated(absl::StrCat("malformed Authorization header: '", field.substr(0, 40),
                                          "' is not NAME=VALUE"));
    }
    absl::string_view name = field.substr(0, eq);
    absl::string_view value = field.substr(eq + 1);
    if (name == "Credential" && !have_credential) {
      out.key_id = std::string(value);
      have_credential = !value.empty();
    } else if (name == "SignedHeaders" && !have_headers) {
      out.signed_headers = absl::StrSplit(value, ';');
      have_headers = !value.empty();
    } else if (name == "Signature" && !have_signature) {
      out.signature = std::string(value);
      have_signature = value.size() == 64 && IsLowerHex(value);
      if (!have_signature) {
        return Unauthenticated(
            "malformed Authorization header: Signature must be 64 lower-case hex digits");
      }
    } else {
      return Unauthenticated(
          absl::StrCat("malformed Authorization header: unexpected or repeated "
                       "field '",
                       name.substr(0, 40), "'"));
    }
  }
  if (!have_credential || !have_headers || !have_signature) {
    return Unauthenticated(
        "malformed Authorization header: Credential, SignedHeaders and Signature are required");
  }
  if (!std::is_sorted(out.signed_headers.begin(), out.signed_headers.end()) ||
      std::adjacent_find(out.signed_headers.begin(), out.signed_headers.end()) !=
          out.signed_headers.end()) {
    return Unauthenticated(
        "malformed Authorization header: SignedHeaders must be sorted, without repeats");
  }
  for (const std::string& h : out.signed_headers) {
    if (h.empty() || h != absl::AsciiStrToLower(h)) {
      return Unauthenticated(
          "malformed Authorization header: SignedHeaders must be lower-case names");
    }
  }
  for (absl::string_view required : {absl::string_view("host"), kBodyHashHeader, kDateHeader}) {
    if (!std::binary_search(out.signed_headers.begin(), out.signed_headers.end(), required)) {
      return Unauthenticated(
          absl::StrCat("malformed Authorization header: SignedHeaders must include ", required));
    }
  }
  return out;
}

void SignRequest(RequestToSign* request, absl::string_view body, absl::string_view key_id,
                 absl::string_view secret, absl::Time now,
                 const std::vector<std::string>& also_sign) {
  std::string date = FormatSigningTime(now);
  request->headers[std::string(kDateHeader)] = date;
  request->headers[std::string(kBodyHashHeader)] = Sha256Hex(body);
  std::vector<std::string> names = {"host", std::string(kBodyHashHeader), std::string(kDateHeader)};
  for (const std::string& h : also_sign) names.push_back(absl::AsciiStrToLower(h));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string signature =
      HmacSha256Hex(secret, StringToSign(date, CanonicalRequest(*request, names)));
  request->headers["authorization"] =
      absl::StrCat(kScheme, " Credential=", key_id, ", SignedHeaders=", absl::StrJoin(names, ";"),
                   ", Signature=", signature);
}

namespace {

// 128 bits of a signature: its 64 hex digits folded (the two halves XORed), or a hash of
// anything else. An HMAC-SHA256 is uniformly random, so keys collide by chance with probability
// 2^-128.
absl::uint128 SignatureKey(absl::string_view signature) {
  if (signature.size() == 64) {
    uint64_t part[4] = {0, 0, 0, 0};
    bool hex = true;
    for (size_t i = 0; i < 64 && hex; ++i) {
      char c = signature[i];
      int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      hex = v >= 0;
      part[i / 16] = (part[i / 16] << 4) | static_cast<uint64_t>(hex ? v : 0);
    }
    if (hex) return absl::MakeUint128(part[0] ^ part[2], part[1] ^ part[3]);
  }
  return absl::MakeUint128(
      std::hash<std::string_view>()(std::string_view(signature.data(), signature.size())),
      signature.size());
}

int64_t MinuteOf(absl::Time t) { return absl::ToUnixSeconds(t) / 60; }

}  // namespace

bool ReplayCache::CheckAndRemember(absl::string_view signature, absl::Time signed_at,
                                   absl::Time now) {
  std::lock_guard lock(mu_);
  // A minute whose last second is more than the skew ago cannot pass the time check any more.
  int64_t oldest = MinuteOf(now - skew_) - 1;
  while (!by_minute_.empty() && by_minute_.begin()->first < oldest) {
    by_minute_.erase(by_minute_.begin());
  }
  return by_minute_[MinuteOf(signed_at)].insert(SignatureKey(signature)).second;
}

size_t ReplayCache::size() {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [minute, seen] : by_minute_) n += seen.size();
  return n;
}

absl::StatusOr<std::string> Verify(const RequestToSign& request, absl::string_view body,
                                   const SecretLookup& lookup, absl::Time now,
                                   ReplayCache* replays) {
  auto header = request.headers.find("authorization");
  auto auth = ParseAuthorization(header == request.headers.end() ? "" : header->second);
  if (!auth.ok()) return auth.status();
  auto date = request.headers.find(std::string(kDateHeader));
  if (date == request.headers.end())
    return Unauthenticated("unsigned request: no X-Dlab-Date header");
  auto when = ParseSigningTime(date->second);
  if (!when.ok()) return when.status();
  if (absl::AbsDuration(now - *when) > kMaxClockSkew) {
    return Unauthenticated(absl::StrCat("request time ", date->second,
                                        " is outside the 5 minute window (server time ",
                                        FormatSigningTime(now), ")"));
  }
  auto body_hash = request.headers.find(std::string(kBodyHashHeader));
  if (body_hash == request.headers.end() || body_hash->second != Sha256Hex(body)) {
    return Unauthenticated("body does not match X-Dlab-Content-Sha256");
  }
  std::optional<std::string> secret = lookup(auth->key_id);
  if (!secret) {
    return Unauthenticated(
        absl::StrCat("unknown or revoked access key '", auth->key_id.substr(0, 64), "'"));
  }
  std::string want = HmacSha256Hex(
      *secret, StringToSign(date->second, CanonicalRequest(request, auth->signed_headers)));
  if (CRYPTO_memcmp(want.data(), auth->signature.data(), want.size()) != 0) {
    return Unauthenticated("signature does not match");
  }
  if (replays != nullptr && !replays->CheckAndRemember(auth->signature, *when, now)) {
    return Unauthenticated("replayed request");
  }
  return auth->key_id;
}

}  // namespace dlab::auth
