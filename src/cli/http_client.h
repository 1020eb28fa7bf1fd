// A small blocking HTTP client for dlabd's REST API over libcurl: JSON and binary requests, file
// uploads with progress, and streamed responses (for Server-Sent Events). With an access key it
// signs every request (docs/auth.md); with a tenant it sends X-Dlab-Tenant. Non-2xx answers
// become Status values carrying the server's error message. One client per thread; not
// thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace dlab {

// Query parameters or headers as (name, value) pairs, in order; names may repeat.
using NameValues = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, POST, PUT or DELETE
  // The decoded path, e.g. "/api/v1/tenants/my team/quota"; each segment is percent-encoded on
  // the wire, so a '/' inside a name must not be passed here.
  std::string path;
  NameValues query;                 // decoded; percent-encoded on the wire
  NameValues headers;               // more headers, sent unsigned (e.g. a session's Cookie)
  std::string content_type;         // of the body; empty for none
  std::string body;                 // sent as is, unless body_file is set
  std::filesystem::path body_file;  // when set, its content is streamed as the body
  // Called as the body is sent: bytes so far and the total.
  std::function<void(int64_t sent, int64_t total)> on_upload_progress;
  // When set, a 2xx response body is handed over chunk by chunk as it arrives instead of being
  // collected; returning false stops the transfer (which then counts as success).
  std::function<bool(std::string_view chunk)> on_chunk;
};

struct HttpResponse {
  long status = 0;
  std::string body;    // empty when on_chunk consumed it
  NameValues headers;  // of the final response, names lower case
};

// An access key (docs/auth.md): the id, always shown, and the secret, shown once.
struct Credentials {
  std::string key_id;
  std::string secret;
};

struct HttpClientOptions {
  std::optional<Credentials> credentials;  // signs every request; unset: requests go unsigned
  std::optional<std::string> tenant;       // sent as X-Dlab-Tenant (and signed)
};

// What goes on the wire for one request: the URL and the header lines ("Name: value").
struct WireRequest {
  std::string url;
  std::vector<std::string> headers;
};

class HttpClient final {
 public:
  // base_url like "http://127.0.0.1:8080", without a trailing '/'.
  explicit HttpClient(std::string base_url, HttpClientOptions options = {});
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request and returns a 2xx response. Failures: Unavailable "cannot reach dlabd at
  // URL: ..." when there is no connection; for other statuses the server's error.message with
  // 400 -> InvalidArgument, 401 -> Unauthenticated, 403 -> PermissionDenied, 404 -> NotFound,
  // 409 -> FailedPrecondition, 413 -> InvalidArgument ("... too large"), 429 ->
  // ResourceExhausted, 502/503/504 -> Unavailable, else Internal; InvalidArgument for a base URL
  // libcurl cannot parse or a header value with a line break; Internal when body_file cannot be
  // read.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request);

  // Shorthands for JSON requests that parse the 2xx body as JSON (null when it is empty, as for
  // 204; Internal when it is not JSON).
  absl::StatusOr<nlohmann::json> GetJson(std::string_view path, NameValues query = {});
  absl::StatusOr<nlohmann::json> PostJson(std::string_view path, const nlohmann::json& body);
  absl::StatusOr<nlohmann::json> PutJson(std::string_view path, const nlohmann::json& body);
  absl::StatusOr<nlohmann::json> DeleteJson(std::string_view path);
  // Sends any request and parses its reply as the shorthands do.
  absl::StatusOr<nlohmann::json> SendJson(const HttpRequest& request);

  // The URL and headers Send puts on the wire for request, whose body is `body`: the Host header
  // as the base URL names it ("host[:port]"), Content-Type, X-Dlab-Tenant, and, with
  // credentials, X-Dlab-Nonce (`nonce`), X-Dlab-Date (`now`), X-Dlab-Content-Sha256 and
  // Authorization signing all of them. Failures as for Send.
  absl::StatusOr<WireRequest> Prepare(const HttpRequest& request, absl::string_view body,
                                      absl::Time now, absl::string_view nonce) const;

  const std::string& base_url() const { return base_url_; }
  const HttpClientOptions& options() const { return options_; }

 private:
  std::string base_url_;
  HttpClientOptions options_;
};

// A request with `body` as its JSON content (no body when null).
HttpRequest JsonRequest(std::string_view method, std::string_view path, const nlohmann::json& body);

// The Status for a non-2xx answer with the given body (the API's {"error": {...}} or any text).
absl::Status StatusFromHttpError(long http_status, std::string_view body);

// The value of the cookie `name` that the response sets (Set-Cookie), if it does.
std::optional<std::string> SetCookieValue(const HttpResponse& response, absl::string_view name);

}  // namespace dlab
