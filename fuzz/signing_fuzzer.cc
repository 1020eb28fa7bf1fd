// libFuzzer target for request signing (src/auth/signing.h): the Authorization header parser,
// the X-Dlab-Date parser, the canonical request and the server-side Verify.
// The input is a request as text (the seeds in fuzz/corpus/signing show it):
//   METHOD \n PATH \n NAME=VALUE&NAME=VALUE \n HEADER: VALUE \n ... \n \n BODY
// Besides the sanitizers, it checks that a parsed Authorization prints back to itself, that a
// parsed time formats back to its text, and that any request SignRequest signed verifies, is
// refused when replayed, and is refused once its body, path, query or host is changed.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "auth/signing.h"

namespace dlab::auth {
namespace {

// The key of tests/vectors/signing.json, so that the seeds made from it verify.
constexpr absl::string_view kKeyId = "AKTEST";
constexpr absl::string_view kSecret = "dlab-test-secret-0123456789abcdef";
// The server's time when the request has no X-Dlab-Date that parses.
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 22, 10, 15, 0), absl::UTCTimeZone());

[[noreturn]] void Fail(absl::string_view what, absl::string_view detail) {
  std::fprintf(stderr, "signing_fuzzer: %.*s\n%.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

std::optional<std::string> Lookup(absl::string_view key_id) {
  if (key_id == kKeyId) return std::string(kSecret);
  return std::nullopt;
}

absl::string_view NextLine(absl::string_view* text) {
  size_t end = text->find('\n');
  absl::string_view line = text->substr(0, end);
  text->remove_prefix(end == absl::string_view::npos ? text->size() : end + 1);
  return line;
}

// Splits the input into a request and its body (see the top of this file).
RequestToSign ParseInput(absl::string_view text, std::string* body) {
  RequestToSign request;
  request.method = std::string(NextLine(&text));
  request.path = std::string(NextLine(&text));
  for (absl::string_view pair : absl::StrSplit(NextLine(&text), '&', absl::SkipEmpty())) {
    request.query.push_back(absl::StrSplit(pair, absl::MaxSplits('=', 1)));
  }
  for (absl::string_view line = NextLine(&text); !line.empty(); line = NextLine(&text)) {
    std::pair<absl::string_view, absl::string_view> header =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    request.headers[absl::AsciiStrToLower(header.first)] =
        std::string(absl::StripLeadingAsciiWhitespace(header.second));
  }
  *body = std::string(text);
  return request;
}

void ExpectUnauthenticated(const absl::Status& status, absl::string_view what) {
  if (status.code() != absl::StatusCode::kUnauthenticated) Fail(what, status.ToString());
}

void CheckAuthorization(absl::string_view header) {
  auto auth = ParseAuthorization(header);
  if (!auth.ok()) return ExpectUnauthenticated(auth.status(), "ParseAuthorization");
  if (auth->signature.size() != 64) Fail("ParseAuthorization: short signature", header);
  std::string printed = absl::StrCat(kScheme, " Credential=", auth->key_id,
                                     ", SignedHeaders=", absl::StrJoin(auth->signed_headers, ";"),
                                     ", Signature=", auth->signature);
  auto again = ParseAuthorization(printed);
  if (!again.ok() || again->key_id != auth->key_id ||
      again->signed_headers != auth->signed_headers || again->signature != auth->signature) {
    Fail("ParseAuthorization: the parsed header does not parse back to itself",
         absl::StrCat(header, "\n", printed));
  }
}

std::optional<absl::Time> CheckSigningTime(absl::string_view text) {
  auto t = ParseSigningTime(text);
  if (!t.ok()) {
    ExpectUnauthenticated(t.status(), "ParseSigningTime");
    return std::nullopt;
  }
  // FormatSigningTime prints years before 1000 with fewer than 4 digits; no client sends those.
  if (absl::ToCivilYear(*t, absl::UTCTimeZone()).year() >= 1000 && FormatSigningTime(*t) != text) {
    Fail("ParseSigningTime: the time does not format back to its text",
         absl::StrCat(text, " -> ", FormatSigningTime(*t)));
  }
  return *t;
}

// Signed by SignRequest, the request must verify once and only once, and not after a change.
void CheckSignedRequest(RequestToSign request, const std::string& body) {
  std::vector<std::string> also_sign;
  for (const auto& [name, value] : request.headers) {
    // SignRequest's callers name HTTP header names; authorization is what it writes.
    bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_';
    });
    if (token && name != "authorization") also_sign.push_back(name);
  }
  SignRequest(&request, body, kKeyId, kSecret, kNow, also_sign);
  const std::string authorization = request.headers["authorization"];
  ReplayCache replays;
  auto key = Verify(request, body, Lookup, kNow, &replays);
  if (!key.ok()) {
    Fail(absl::StrCat("signed request refused: ", key.status().message()), authorization);
  }
  if (*key != kKeyId) Fail("signed request: wrong key id", *key);
  if (Verify(request, body, Lookup, kNow, &replays).ok()) Fail("replay accepted", authorization);

  auto expect_refused = [&](const RequestToSign& changed, absl::string_view changed_body,
                            absl::string_view what) {
    if (Verify(changed, changed_body, Lookup, kNow, nullptr).ok()) Fail(what, authorization);
  };
  expect_refused(request, body + "x", "changed body accepted");
  RequestToSign changed = request;
  changed.path += "x";
  expect_refused(changed, body, "changed path accepted");
  changed = request;
  changed.query.emplace_back("x", "");
  expect_refused(changed, body, "added query parameter accepted");
  changed = request;
  changed.headers["host"] += "x";
  expect_refused(changed, body, "changed host accepted");
}

void FuzzOne(absl::string_view input) {
  CheckAuthorization(input);
  CheckSigningTime(input);

  std::string body;
  RequestToSign request = ParseInput(input, &body);
  auto header = request.headers.find("authorization");
  if (header != request.headers.end()) CheckAuthorization(header->second);
  // The request's own time, so that the seeds' real signatures verify.
  std::optional<absl::Time> now;
  auto date = request.headers.find(std::string(kDateHeader));
  if (date != request.headers.end()) now = CheckSigningTime(date->second);

  ReplayCache replays;
  auto key = Verify(request, body, Lookup, now.value_or(kNow), &replays);
  if (!key.ok()) {
    ExpectUnauthenticated(key.status(), "Verify");
  } else if (*key != kKeyId) {
    Fail("Verify: wrong key id", *key);
  }
  CheckSignedRequest(std::move(request), body);
}

}  // namespace
}  // namespace dlab::auth

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dlab::auth::FuzzOne(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
