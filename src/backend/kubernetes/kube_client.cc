#include "backend/kubernetes/kube_client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/yaml_json.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using json = nlohmann::json;

std::once_flag curl_init;

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// A string field of a kubeconfig mapping ("" when absent).
std::string Str(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// The entry called name in a kubeconfig list (clusters, users, contexts), its inner mapping.
absl::StatusOr<json> Named(const json& config, const char* list, const char* inner,
                           const std::string& name) {
  auto items = config.find(list);
  if (items != config.end() && items->is_array()) {
    for (const json& item : *items) {
      if (item.is_object() && Str(item, "name") == name && item.contains(inner) &&
          item[inner].is_object()) {
        return item[inner];
      }
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("kubeconfig: ", list, " has no entry named '", name, "'"));
}

// "*-data" fields hold base64 PEM; the others name files relative to the kubeconfig.
absl::Status PemField(const json& object, const std::string& key, const std::filesystem::path& dir,
                      std::string* file, std::string* pem) {
  if (std::string data = Str(object, (key + "-data").c_str()); !data.empty()) {
    if (!absl::Base64Unescape(data, pem)) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig: ", key, "-data is not base64"));
    }
  } else if (std::string path = Str(object, key.c_str()); !path.empty()) {
    *file = (dir / path).string();
  }
  return absl::OkStatus();
}

struct Transfer {
  CURL* handle = nullptr;  // streams: on_data gets only a 2xx response's body
  const std::function<bool(absl::string_view)>* on_data = nullptr;
  std::string* body = nullptr;
  const std::atomic<bool>* stop = nullptr;
  bool stopped = false;
};

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  absl::string_view chunk(data, size * n);
  if (t->body) t->body->append(chunk.data(), chunk.size());
  if (t->handle != nullptr) {
    long status = 0;
    curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) return size * n;  // an error's body: not the stream
  }
  if (t->on_data && !(*t->on_data)(chunk)) {
    t->stopped = true;
    return 0;  // aborts the transfer
  }
  return size * n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->stop && t->stop->load()) {
    t->stopped = true;
    return 1;
  }
  return 0;
}

// A curl handle set up for the connection: server URL + path, TLS, authentication.
absl::StatusOr<std::unique_ptr<CURL, CurlDeleter>> Handle(
    const KubeConnection& c, const std::string& path,
    std::unique_ptr<curl_slist, SlistDeleter>* headers) {
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> h(curl_easy_init());
  if (!h) return absl::InternalError("curl_easy_init failed");
  CURL* e = h.get();
  std::string url = absl::StrCat(absl::StripSuffix(c.server, "/"), path);
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());  // copied by curl
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  if (c.insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!c.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, c.ca_file.c_str());
  if (!c.ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(c.ca_pem.data()), c.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!c.client_cert_file.empty()) curl_easy_setopt(e, CURLOPT_SSLCERT, c.client_cert_file.c_str());
  if (!c.client_cert_pem.empty()) {
    curl_blob blob{const_cast<char*>(c.client_cert_pem.data()), c.client_cert_pem.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
  }
  if (!c.client_key_file.empty()) curl_easy_setopt(e, CURLOPT_SSLKEY, c.client_key_file.c_str());
  if (!c.client_key_pem.empty()) {
    curl_blob blob{const_cast<char*>(c.client_key_pem.data()), c.client_key_pem.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
  }
  std::string token = c.token;
  if (!c.token_file.empty()) {
    absl::StatusOr<std::string> t = ReadFile(c.token_file);
    if (!t.ok()) {
      return absl::UnavailableError(
          absl::StrCat("kubernetes: cannot read the token file: ", t.status().message()));
    }
    token = std::string(absl::StripAsciiWhitespace(*t));
  }
  curl_slist* list = nullptr;
  list = curl_slist_append(list, "Accept: application/json");
  list = curl_slist_append(list, "Content-Type: application/json");
  if (!token.empty()) {
    list = curl_slist_append(list, absl::StrCat("Authorization: Bearer ", token).c_str());
  }
  headers->reset(list);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
  return h;
}

}  // namespace

absl::StatusOr<KubeConnection> LoadKubeconfig(const std::string& path, const std::string& context) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::NotFoundError(
        absl::StrCat("kubeconfig ", path, ": cannot read: ", text.status().message()));
  }
  absl::StatusOr<json> config = ParseYamlOrJson(*text);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", path, ": ", config.status().message()));
  }
  if (!config->is_object())
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": not a mapping"));
  std::string name = context.empty() ? Str(*config, "current-context") : context;
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", path, ": no current-context; name a context"));
  }
  absl::StatusOr<json> ctx = Named(*config, "contexts", "context", name);
  if (!ctx.ok()) return ctx.status();
  absl::StatusOr<json> cluster = Named(*config, "clusters", "cluster", Str(*ctx, "cluster"));
  if (!cluster.ok()) return cluster.status();
  KubeConnection c;
  c.server = Str(*cluster, "server");
  if (c.server.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", path, ": cluster '", Str(*ctx, "cluster"), "' has no server"));
  }
  c.namespace_ = Str(*ctx, "namespace");
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (auto s = PemField(*cluster, "certificate-authority", dir, &c.ca_file, &c.ca_pem); !s.ok()) {
    return s;
  }
  auto skip = cluster->find("insecure-skip-tls-verify");
  c.insecure = skip != cluster->end() && skip->is_boolean() && skip->get<bool>();
  if (std::string user_name = Str(*ctx, "user"); !user_name.empty()) {
    absl::StatusOr<json> user = Named(*config, "users", "user", user_name);
    if (!user.ok()) return user.status();
    if (user->contains("exec") || user->contains("auth-provider")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "kubeconfig ", path, ": user '", user_name,
          "' authenticates with an exec plugin or auth provider, which dlabd does not run; "
          "give it a service-account token (token or tokenFile) or a client certificate"));
    }
    c.token = Str(*user, "token");
    if (std::string file = Str(*user, "tokenFile"); !file.empty())
      c.token_file = (dir / file).string();
    if (auto s =
            PemField(*user, "client-certificate", dir, &c.client_cert_file, &c.client_cert_pem);
        !s.ok()) {
      return s;
    }
    if (auto s = PemField(*user, "client-key", dir, &c.client_key_file, &c.client_key_pem);
        !s.ok()) {
      return s;
    }
  }
  return c;
}

absl::StatusOr<KubeConnection> InClusterConnection(const std::string& root) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0') {
    return absl::FailedPreconditionError(
        "kubernetes: not running in a pod (KUBERNETES_SERVICE_HOST is not set); set "
        "backend.kubeconfig");
  }
  KubeConnection c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = absl::StrCat("[", h, "]");  // IPv6
  c.server = absl::StrCat("https://", h, ":", port);
  c.token_file = root + "/token";
  if (!FileExists(c.token_file)) {
    return absl::FailedPreconditionError(absl::StrCat("kubernetes: no service-account token at ",
                                                      c.token_file,
                                                      " (automountServiceAccountToken off?)"));
  }
  if (FileExists(root + "/ca.crt")) c.ca_file = root + "/ca.crt";
  if (absl::StatusOr<std::string> ns = ReadFile(root + "/namespace"); ns.ok()) {
    c.namespace_ = std::string(absl::StripAsciiWhitespace(*ns));
  }
  return c;
}

KubeClient::KubeClient(KubeConnection connection, absl::Duration timeout)
    : connection_(std::move(connection)), timeout_(timeout) {}

absl::StatusOr<KubeResponse> KubeClient::Request(const std::string& method, const std::string& path,
                                                 const std::string& body) const {
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto h = Handle(connection_, path, &headers);
  if (!h.ok()) return h.status();
  CURL* e = h->get();
  KubeResponse response;
  Transfer t{.body = &response.body};
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty()) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  CURLcode rc = curl_easy_perform(e);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("kubernetes: ", method, " ", path, ": ",
                                               *error ? error : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

absl::StatusOr<long> KubeClient::Stream(const std::string& path,
                                        const std::function<bool(absl::string_view)>& on_data,
                                        const std::atomic<bool>* stop) const {
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto h = Handle(connection_, path, &headers);
  if (!h.ok()) return h.status();
  CURL* e = h->get();
  Transfer t{.handle = e, .on_data = &on_data, .stop = stop};
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, &t);
  CURLcode rc = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK && !t.stopped) {
    return absl::UnavailableError(
        absl::StrCat("kubernetes: GET ", path, ": ", *error ? error : curl_easy_strerror(rc)));
  }
  return status;
}

std::string KubeErrorMessage(const KubeResponse& response) {
  std::string message;
  try {
    json j = json::parse(response.body);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) {
      message = j["message"].get<std::string>();
    }
  } catch (const json::exception&) {
  }
  if (message.empty()) message = response.body.substr(0, 300);
  return absl::StrCat("HTTP ", response.status, ": ", message);
}

}  // namespace dlab
