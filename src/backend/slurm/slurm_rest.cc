#include "backend/slurm/slurm_rest.h"

#include <curl/curl.h>
#include <pwd.h>
#include <unistd.h>

#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"

namespace dlab {
namespace {

constexpr absl::string_view kApi = "/slurm/v0.0.38";

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string UserName() {
  if (const passwd* pw = getpwuid(geteuid()); pw != nullptr) return pw->pw_name;
  return absl::StrCat(geteuid());
}

}  // namespace

struct SlurmRestClient::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
};

SlurmRestClient::SlurmRestClient(const SlurmOptions& options, absl::Duration timeout)
    : options_(options), timeout_(timeout), handle_(std::make_unique<Handle>()) {}

SlurmRestClient::~SlurmRestClient() = default;

absl::StatusOr<SlurmRestResponse> SlurmRestClient::Request(const std::string& method,
                                                           const std::string& path,
                                                           const std::string& body) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (handle_->curl == nullptr) {
    handle_->curl = curl_easy_init();
    if (handle_->curl == nullptr) return absl::InternalError("curl_easy_init failed");
  }
  CURL* e = handle_->curl;
  curl_easy_reset(e);  // keeps the connection
  std::string url;
  if (absl::StartsWith(options_.rest_url, "unix:")) {
    std::string socket(absl::StripPrefix(options_.rest_url, "unix:"));
    curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());  // copied by curl
    url = absl::StrCat("http://localhost", path);
  } else {
    url = absl::StrCat(absl::StripSuffix(options_.rest_url, "/"), path);
  }
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10'000L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  if (!body.empty()) headers = curl_slist_append(headers, "Content-Type: application/json");
  if (!options_.rest_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadFile(options_.rest_token_file);
    if (!token.ok()) {
      curl_slist_free_all(headers);
      return absl::UnavailableError(
          absl::StrCat("slurmrestd: cannot read the token file: ", token.status().message()));
    }
    std::string user = options_.rest_user.empty() ? UserName() : options_.rest_user;
    headers = curl_slist_append(headers, absl::StrCat("X-SLURM-USER-NAME: ", user).c_str());
    headers = curl_slist_append(
        headers,
        absl::StrCat("X-SLURM-USER-TOKEN: ", absl::StripAsciiWhitespace(*token)).c_str());
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty()) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  SlurmRestResponse response;
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &response.body);
  CURLcode rc = curl_easy_perform(e);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("slurmrestd at ", options_.rest_url, ": ",
                                               curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

absl::StatusOr<int64_t> SlurmRestClient::Submit(const std::string& body) {
  absl::StatusOr<SlurmRestResponse> r = Request("POST", absl::StrCat(kApi, "/job/submit"), body);
  if (!r.ok()) return r.status();
  return ParseSlurmRestSubmit(r->status, r->body);
}

absl::Status SlurmRestClient::Ping() {
  absl::StatusOr<SlurmRestResponse> r = Request("GET", absl::StrCat(kApi, "/ping"));
  if (!r.ok()) return r.status();
  if (r->status == 404) {
    return absl::UnavailableError(absl::StrCat(
        "slurmrestd at ", options_.rest_url, " does not serve ", kApi,
        " (Slurm 22.05 to 23.11, started with -s openapi/v0.0.38); leave backend.slurmrestd "
        "out to submit with sbatch"));
  }
  if (r->status == 401 || r->status == 403) {
    return absl::UnavailableError(absl::StrCat("slurmrestd at ", options_.rest_url,
                                               " refused dlabd (HTTP ", r->status,
                                               "): check its authentication (rest_auth/local "
                                               "for dlabd's user, or a JWT token file)"));
  }
  if (r->status != 200 || !absl::StrContains(r->body, "UP")) {
    return absl::UnavailableError(
        absl::StrCat("slurmrestd at ", options_.rest_url, " answered HTTP ", r->status,
                     " to ping, not slurmctld UP: ", r->body.substr(0, 300)));
  }
  return absl::OkStatus();
}

}  // namespace dlab
