// A small client for the Kubernetes API server's REST API over libcurl: where the server is
// and how to authenticate (a kubeconfig file, or the in-cluster service account), plain
// requests, and streamed GETs for watches and pod logs. Thread-safe: every call uses its own
// curl handle.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace dlab {

struct KubeConnection {
  std::string server;      // "https://10.0.0.1:6443"
  std::string namespace_;  // the context's namespace, or the service account's ("" : unknown)
  std::string token;       // bearer token ("" : none)
  std::string token_file;  // read again before every request (bound tokens rotate)
  std::string ca_file;     // PEM file; or
  std::string ca_pem;      // PEM text (certificate-authority-data, decoded)
  std::string client_cert_file, client_cert_pem;
  std::string client_key_file, client_key_pem;
  bool insecure = false;  // insecure-skip-tls-verify
};

// A kubeconfig file's connection for a context ("" : current-context). InvalidArgument naming
// what is missing or malformed; NotFound when the file cannot be read.
absl::StatusOr<KubeConnection> LoadKubeconfig(const std::string& path,
                                              const std::string& context = "");

// The in-cluster connection: KUBERNETES_SERVICE_HOST/PORT, and the service account's token,
// CA and namespace under /var/run/secrets/kubernetes.io/serviceaccount (or root, for tests).
// FailedPrecondition when not running in a pod.
absl::StatusOr<KubeConnection> InClusterConnection(
    const std::string& root = "/var/run/secrets/kubernetes.io/serviceaccount");

struct KubeResponse {
  long status = 0;  // HTTP status
  std::string body;
};

class KubeClient {
 public:
  explicit KubeClient(KubeConnection connection, absl::Duration timeout = absl::Seconds(30));

  const KubeConnection& connection() const { return connection_; }

  // One request; path starts with "/" and includes the query. body is JSON ("" : none).
  // Unavailable when the server cannot be reached; any HTTP status is a response.
  absl::StatusOr<KubeResponse> Request(const std::string& method, const std::string& path,
                                       const std::string& body = "") const;

  // A streamed GET (watch, log follow): on_data gets the body as it arrives (return false to
  // stop). Returns the HTTP status once the server ends the stream, on_data says stop, or
  // *stop turns true (checked about once a second). Only a 2xx response's body reaches
  // on_data; another status is just returned. Unavailable when the server cannot be reached
  // or the connection breaks.
  absl::StatusOr<long> Stream(const std::string& path,
                              const std::function<bool(absl::string_view)>& on_data,
                              const std::atomic<bool>* stop) const;

 private:
  KubeConnection connection_;
  absl::Duration timeout_;
};

// The message of a Kubernetes Status object in body, or the body itself, shortened.
std::string KubeErrorMessage(const KubeResponse& response);

}  // namespace dlab
