#include "cli/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "auth/secrets.h"
#include "auth/signing.h"
#include "common/uri_encode.h"

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

// Collects the headers of the final response (a new status line starts a new set).
size_t OnHeader(char* data, size_t size, size_t count, void* opaque) {
  auto* t = static_cast<Transfer*>(opaque);
  size_t bytes = size * count;
  absl::string_view line = absl::StripTrailingAsciiWhitespace(absl::string_view(data, bytes));
  if (absl::StartsWith(line, "HTTP/")) {
    t->response.headers.clear();
    return bytes;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response.headers.emplace_back(
        absl::AsciiStrToLower(line.substr(0, colon)),
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  return bytes;
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
struct UrlCleanup {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

// A file's content mapped into memory, to hash an upload without reading it into the heap.
class MappedFile final {
 public:
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::filesystem::path& path) {
    auto error = [&] { return absl::InternalError(absl::StrCat("cannot read ", path.string())); };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return error();
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return error();
    }
    size_t size = static_cast<size_t>(st.st_size);
    void* data = nullptr;
    if (size > 0) {
      data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data == MAP_FAILED) {
        ::close(fd);
        return error();
      }
    }
    ::close(fd);
    return std::unique_ptr<MappedFile>(new MappedFile(data, size));
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  absl::string_view content() const {
    return data_ == nullptr ? absl::string_view()
                            : absl::string_view(static_cast<char*>(data_), size_);
  }

 private:
  MappedFile(void* data, size_t size) : data_(data), size_(size) {}
  void* data_;
  size_t size_;
};

// What the base URL contributes to every request: the Host header ("host[:port]", as libcurl
// would send it; sent explicitly, so that what is signed is what goes out) and its path,
// decoded, without a trailing '/' ("" for none).
struct BaseUrlParts {
  std::string host;
  std::string path;
};

absl::StatusOr<BaseUrlParts> ParseBaseUrl(const std::string& base_url) {
  std::unique_ptr<CURLU, UrlCleanup> url(curl_url());
  auto invalid = [&](CURLUcode code) {
    return absl::InvalidArgumentError(
        absl::StrCat("the server URL '", base_url, "' is not valid: ", curl_url_strerror(code)));
  };
  if (CURLUcode code = curl_url_set(url.get(), CURLUPART_URL, base_url.c_str(),
                                    CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME);
      code != CURLUE_OK) {
    return invalid(code);
  }
  auto get = [&](CURLUPart part, unsigned flags) -> std::optional<std::string> {
    char* value = nullptr;
    if (curl_url_get(url.get(), part, &value, flags) != CURLUE_OK || value == nullptr) {
      return std::nullopt;
    }
    std::string out(value);
    curl_free(value);
    return out;
  };
  std::optional<std::string> host = get(CURLUPART_HOST, 0);
  if (!host || host->empty()) return invalid(CURLUE_NO_HOST);
  BaseUrlParts parts{.host = *host};
  if (std::optional<std::string> port = get(CURLUPART_PORT, 0)) {
    absl::StrAppend(&parts.host, ":", *port);
  }
  parts.path = get(CURLUPART_PATH, CURLU_URLDECODE).value_or("");
  while (!parts.path.empty() && parts.path.back() == '/') parts.path.pop_back();
  return parts;
}

// "/a%20b/c": each segment of a decoded path percent-encoded.
std::string EncodePath(absl::string_view path) {
  std::vector<std::string> segments;
  for (absl::string_view segment : absl::StrSplit(path, '/'))
    segments.push_back(UriEncode(segment));
  return absl::StrJoin(segments, "/");
}

std::string EncodeQuery(const NameValues& query) {
  std::vector<std::string> pairs;
  for (const auto& [name, value] : query) {
    pairs.push_back(absl::StrCat(UriEncode(name), "=", UriEncode(value)));
  }
  return absl::StrJoin(pairs, "&");
}

bool HasLineBreak(absl::string_view value) {
  return value.find_first_of(absl::string_view("\r\n\0", 3)) != absl::string_view::npos;
}

absl::StatusOr<nlohmann::json> JsonReply(absl::StatusOr<HttpResponse> response,
                                         const std::string& method, const std::string& path) {
  if (!response.ok()) return response.status();
  if (absl::StripAsciiWhitespace(response->body).empty()) return nlohmann::json();
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
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
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

HttpClient::HttpClient(std::string base_url, HttpClientOptions options)
    : base_url_(std::move(base_url)), options_(std::move(options)) {
  InitCurlOnce();
}

absl::StatusOr<WireRequest> HttpClient::Prepare(const HttpRequest& request, absl::string_view body,
                                                absl::Time now, absl::string_view nonce) const {
  auto base = ParseBaseUrl(base_url_);
  if (!base.ok()) return base.status();
  WireRequest wire{.url = absl::StrCat(base_url_, EncodePath(request.path))};
  if (!request.query.empty()) absl::StrAppend(&wire.url, "?", EncodeQuery(request.query));

  // Sent and, with credentials, signed: names lower case as they are signed.
  std::map<std::string, std::string> signed_headers = {{"host", base->host}};
  if (!request.content_type.empty()) signed_headers["content-type"] = request.content_type;
  if (options_.tenant && !options_.tenant->empty()) {
    signed_headers["x-dlab-tenant"] = *options_.tenant;
  }
  if (options_.credentials) {
    signed_headers["x-dlab-nonce"] = std::string(nonce);
    auth::RequestToSign to_sign{.method = request.method,
                                .path = base->path + request.path,
                                .query = request.query,
                                .headers = signed_headers};
    std::vector<std::string> also_sign;
    for (const auto& [name, value] : signed_headers) also_sign.push_back(name);
    auth::SignRequest(&to_sign, body, options_.credentials->key_id, options_.credentials->secret,
                      now, also_sign);
    signed_headers = std::move(to_sign.headers);
  }
  NameValues sent(signed_headers.begin(), signed_headers.end());
  sent.insert(sent.end(), request.headers.begin(), request.headers.end());
  for (const auto& [name, value] : sent) {
    if (HasLineBreak(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the ", name, " header cannot hold a line break"));
    }
    wire.headers.push_back(absl::StrCat(name, ": ", value));
  }
  return wire;
}

absl::StatusOr<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  std::unique_ptr<MappedFile> mapped;
  absl::string_view body = request.body;
  if (options_.credentials && !request.body_file.empty()) {
    auto file = MappedFile::Open(request.body_file);
    if (!file.ok()) return file.status();
    mapped = *std::move(file);
    body = mapped->content();
  }
  auto wire = Prepare(request, body, absl::Now(), auth::RandomToken(12));
  if (!wire.ok()) return wire.status();
  mapped.reset();

  std::unique_ptr<CURL, CurlCleanup> curl(curl_easy_init());
  if (!curl) return absl::InternalError("cannot initialise libcurl");
  CURL* c = curl.get();
  Transfer t{.request = &request, .curl = c};
  char error_buffer[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(c, CURLOPT_URL, wire->url.c_str());
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);  // no squashing of "/../": send what is signed
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);

  curl_slist* raw_headers = curl_slist_append(nullptr, "Expect:");
  raw_headers = curl_slist_append(raw_headers, "Accept: application/json, text/plain, */*");
  for (const std::string& line : wire->headers) {
    raw_headers = curl_slist_append(raw_headers, line.c_str());
  }
  std::unique_ptr<curl_slist, SlistFree> headers(raw_headers);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  std::unique_ptr<FILE, FileClose> upload;
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method == "POST" || request.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    if (request.method != "POST") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
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

HttpRequest JsonRequest(std::string_view method, std::string_view path,
                        const nlohmann::json& body) {
  HttpRequest request{.method = std::string(method), .path = std::string(path)};
  if (!body.is_null()) {
    request.content_type = "application/json";
    request.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return request;
}

absl::StatusOr<nlohmann::json> HttpClient::SendJson(const HttpRequest& request) {
  return JsonReply(Send(request), request.method, request.path);
}

absl::StatusOr<nlohmann::json> HttpClient::GetJson(std::string_view path, NameValues query) {
  return SendJson(HttpRequest{.path = std::string(path), .query = std::move(query)});
}

absl::StatusOr<nlohmann::json> HttpClient::PostJson(std::string_view path,
                                                    const nlohmann::json& body) {
  return SendJson(JsonRequest("POST", path, body));
}

absl::StatusOr<nlohmann::json> HttpClient::PutJson(std::string_view path,
                                                   const nlohmann::json& body) {
  return SendJson(JsonRequest("PUT", path, body));
}

absl::StatusOr<nlohmann::json> HttpClient::DeleteJson(std::string_view path) {
  return SendJson(HttpRequest{.method = "DELETE", .path = std::string(path)});
}

std::optional<std::string> SetCookieValue(const HttpResponse& response, absl::string_view name) {
  for (const auto& [header, value] : response.headers) {
    if (header != "set-cookie") continue;
    absl::string_view pair = absl::string_view(value).substr(0, value.find(';'));
    size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) continue;
    if (absl::StripAsciiWhitespace(pair.substr(0, eq)) == name) {
      return std::string(absl::StripAsciiWhitespace(pair.substr(eq + 1)));
    }
  }
  return std::nullopt;
}

}  // namespace dlab
