#include "cli/http_client.h"

#include <curl/curl.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace dlab {
namespace {

constexpr long kConnectTimeoutSeconds = 10;
constexpr size_t kMaxPlainErrorBytes = 300;

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  const HttpRequest* request = nullptr;
  CURL* curl = nullptr;
  HttpResponse response;
  FILE* upload = nullptr;
  bool stopped_by_reader = false;
};

long ResponseCode(CURL* curl) {
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  return code;
}

size_t OnWrite(char* data, size_t size, size_t count, void* opaque) {
  auto* t = static_cast<Transfer*>(opaque);
  size_t bytes = size * count;
  long code = ResponseCode(t->curl);
  if (t->request->on_chunk && code >= 200 && code < 300) {
    if (!t->request->on_chunk(std::string_view(data, bytes))) {
      t->stopped_by_reader = true;
      return 0;
    }
    return bytes;
  }
  t->response.body.append(data, bytes);
  return bytes;
}

size_t OnRead(char* buffer, size_t size, size_t count, void* opaque) {
  auto* t = static_cast<Transfer*>(opaque);
  size_t got = std::fread(buffer, 1, size * count, t->upload);
  if (got == 0 && std::ferror(t->upload)) return CURL_READFUNC_ABORT;
  return got;
}

int OnProgress(void* opaque, curl_off_t, curl_off_t, curl_off_t ultotal, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(opaque);
  if (ultotal > 0) t->request->on_upload_progress(ulnow, ultotal);
  return 0;
}

struct CurlCleanup {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};

absl::StatusOr<nlohmann::json> JsonReply(absl::StatusOr<HttpResponse> response,
                                         const std::string& method, const std::string& path) {
  if (!response.ok()) return response.status();
  nlohmann::json parsed =
      nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InternalError(
        absl::StrCat("dlabd sent a reply that is not JSON for ", method, " ", path));
  }
  return parsed;
}

std::string ServerMessage(std::string_view body) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    const nlohmann::json& error = parsed["error"];
    if (error.contains("message") && error["message"].is_string()) {
      return error["message"].get<std::string>();
    }
  }
  std::string text(absl::StripAsciiWhitespace(absl::string_view(body.data(), body.size())));
  if (text.size() > kMaxPlainErrorBytes)
    text = absl::StrCat(text.substr(0, kMaxPlainErrorBytes), "...");
  return text;
}

}  // namespace

absl::Status StatusFromHttpError(long http_status, std::string_view body) {
  std::string message = ServerMessage(body);
  if (message.empty()) message = absl::StrCat("dlabd answered HTTP ", http_status);
  switch (http_status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 404:
      return absl::NotFoundError(message);
    case 409:
      return absl::FailedPreconditionError(message);
    case 413:
      return absl::InvalidArgumentError(absl::StrCat("request too large: ", message));
    case 429:
      return absl::ResourceExhaustedError(message);
    case 502:
    case 503:
    case 504:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

HttpClient::HttpClient(std::string base_url) : base_url_(std::move(base_url)) { InitCurlOnce(); }

absl::StatusOr<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  std::unique_ptr<CURL, CurlCleanup> curl(curl_easy_init());
  if (!curl) return absl::InternalError("cannot initialise libcurl");
  CURL* c = curl.get();
  Transfer t{.request = &request, .curl = c};
  std::string url = base_url_ + request.path;
  char error_buffer[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);

  curl_slist* raw_headers = curl_slist_append(nullptr, "Expect:");
  raw_headers = curl_slist_append(raw_headers, "Accept: application/json, text/plain, */*");
  if (!request.content_type.empty()) {
    raw_headers = curl_slist_append(raw_headers,
                                    absl::StrCat("Content-Type: ", request.content_type).c_str());
  }
  std::unique_ptr<curl_slist, SlistFree> headers(raw_headers);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  std::unique_ptr<FILE, FileClose> upload;
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    if (!request.body_file.empty()) {
      std::error_code ec;
      uintmax_t size = std::filesystem::file_size(request.body_file, ec);
      upload.reset(ec ? nullptr : std::fopen(request.body_file.c_str(), "rb"));
      if (!upload) {
        return absl::InternalError(absl::StrCat("cannot read ", request.body_file.string()));
      }
      t.upload = upload.get();
      curl_easy_setopt(c, CURLOPT_READFUNCTION, OnRead);
      curl_easy_setopt(c, CURLOPT_READDATA, &t);
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
    } else {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
  } else if (request.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.on_upload_progress) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  }

  CURLcode result = curl_easy_perform(c);
  t.response.status = ResponseCode(c);
  if (result != CURLE_OK && !(result == CURLE_WRITE_ERROR && t.stopped_by_reader)) {
    std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(result);
    if (t.response.status == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot reach dlabd at ", base_url_, ": ", detail));
    }
    return absl::UnavailableError(
        absl::StrCat("lost the connection to dlabd at ", base_url_, ": ", detail));
  }
  if (t.response.status < 200 || t.response.status >= 300) {
    return StatusFromHttpError(t.response.status, t.response.body);
  }
  return std::move(t.response);
}

absl::StatusOr<nlohmann::json> HttpClient::GetJson(std::string_view path) {
  return JsonReply(Send(HttpRequest{.path = std::string(path)}), "GET", std::string(path));
}

absl::StatusOr<nlohmann::json> HttpClient::PostJson(std::string_view path,
                                                    const nlohmann::json& body) {
  return JsonReply(Send(HttpRequest{.method = "POST",
                                    .path = std::string(path),
                                    .content_type = "application/json",
                                    .body = body.dump(-1, ' ', false,
                                                      nlohmann::json::error_handler_t::replace)}),
                   "POST", std::string(path));
}

}  // namespace dlab
