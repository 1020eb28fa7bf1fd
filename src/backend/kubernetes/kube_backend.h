// The Kubernetes backend: each attempt is an Indexed Job (one pod per task, the rank its
// completion index) and a headless Service through which the pods find rank 0, created through
// the API server's REST API (see kube_objects.h for the objects). Kubernetes places the pods
// and enforces their resources; dlab keeps admission, restarts and logs. dlabd watches Jobs
// and Pods (resuming from resourceVersion, listing again on 410 Gone), streams each pod's log
// into the attempt's log files, and writes the attempt's started/exit records itself (the
// same files dlab-shim writes on the other backends), so that an attempt's end survives both
// dlabd restarts and the Job's deletion. Cancel deletes the Job with foreground propagation:
// the pods get SIGTERM and terminationGracePeriodSeconds (= kill_grace).
// Thread-safe, as Backend requires.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "backend/kubernetes/kube_client.h"
#include "backend/kubernetes/kube_objects.h"

namespace dlab {

struct KubeBackendOptions {
  KubeOptions objects;
  absl::Duration request_timeout = absl::Seconds(30);
  absl::Duration watch_timeout = absl::Minutes(5);  // a watch is resumed this often
};

// Unavailable when the API server does not answer or refuses to list Jobs in the namespace.
// The destructor never stops running attempts.
absl::StatusOr<std::unique_ptr<Backend>> NewKubeBackend(KubeBackendOptions options);

}  // namespace dlab
