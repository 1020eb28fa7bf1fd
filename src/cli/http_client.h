// A small blocking HTTP client for dlabd's REST API over libcurl: JSON and binary requests, file
// uploads with progress, and streamed responses (for Server-Sent Events). Non-2xx answers become
// Status values carrying the server's error message. One client per thread; not thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace dlab {

struct HttpRequest {
  std::string method = "GET";       // GET, POST or HEAD
  std::string path;                 // with its query string, e.g. "/api/v1/jobs?limit=5"
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
  std::string body;  // empty when on_chunk consumed it
};

class HttpClient final {
 public:
  // base_url like "http://127.0.0.1:8080", without a trailing '/'.
  explicit HttpClient(std::string base_url);
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request and returns a 2xx response. Failures: Unavailable "cannot reach dlabd at
  // URL: ..." when there is no connection; for other statuses the server's error.message with
  // 400 -> InvalidArgument, 404 -> NotFound, 409 -> FailedPrecondition, 413 -> InvalidArgument
  // ("... too large"), 429 -> ResourceExhausted, 502/503/504 -> Unavailable, else Internal;
  // Internal when body_file cannot be read.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request);

  // Shorthands that parse the 2xx body as JSON (Internal when it is not JSON).
  absl::StatusOr<nlohmann::json> GetJson(std::string_view path);
  absl::StatusOr<nlohmann::json> PostJson(std::string_view path, const nlohmann::json& body);

  const std::string& base_url() const { return base_url_; }

 private:
  std::string base_url_;
};

// The Status for a non-2xx answer with the given body (the API's {"error": {...}} or any text).
absl::Status StatusFromHttpError(long http_status, std::string_view body);

}  // namespace dlab
