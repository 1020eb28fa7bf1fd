// What the Kubernetes backend says to the API server and how it reads the answers, as pure
// functions on JSON (unit-tested, and every generated manifest is checked against the official
// schemas in the end-to-end tests):
//  - one attempt = an Indexed Job (completions = parallelism = tasks; a pod per task, its rank
//    the completion index) + a headless Service so that ranks find rank 0 by name;
//  - how the Job's and its pods' states end an attempt, in dlab's terms (an ExitRecord).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "backend/kubernetes/kube_options.h"
#include "backend/local/attempt_files.h"
#include "nlohmann/json.hpp"

namespace dlab {

// The Job's and Service's name: "dlab-TAG-JOB-ATTEMPT" (a DNS label; TAG tells this dlabd's
// objects from another's in the same namespace).
std::string KubeObjectName(const std::string& tag, int64_t job_id, int attempt);
// The DNS name by which the other pods reach rank `rank`: "NAME-RANK.NAME".
std::string KubePodHost(const std::string& name, int rank);

// Labels on every object of an attempt (selectable: dlab.io/instance=TAG).
std::map<std::string, std::string> KubeLabels(const std::string& tag, const LaunchRequest& request);

struct KubeManifests {
  nlohmann::json job;
  nlohmann::json service;  // ownerReferences to the Job are added once the Job has a uid
  std::string hostfile;    // the MPI hostfile with the pods' names
};

// InvalidArgument when the attempt cannot be expressed (no image, a task without argv).
absl::StatusOr<KubeManifests> AttemptManifests(const LaunchRequest& request,
                                               const KubeOptions& options, const std::string& tag);

// The ownerReference that makes an object go with the Job.
nlohmann::json OwnerReference(const nlohmann::json& job);

// "Ready" etc. for the pods of one attempt, as last seen (from watches or lists). A pod seen
// deleted keeps its last status.
struct KubeAttemptView {
  std::optional<nlohmann::json> job;   // nullopt: the Job is gone
  std::map<int, nlohmann::json> pods;  // by completion index: the newest pod of that index
  int tasks = 1;
  std::vector<bool> auxiliary;  // by rank
  bool cancel_requested = false;
};

struct KubeVerdict {
  enum Kind { kPending, kRunning, kEnded } kind = kPending;
  std::optional<int64_t> start_ms;  // when the first task started (Unix ms)
  ExitRecord exit;                  // kEnded
  bool stop_job = false;            // dlab must delete the Job (it would never end by itself)
  std::string waiting;              // kPending: why, e.g. "Unschedulable: 0/3 nodes ..."
};

KubeVerdict JudgeAttempt(const KubeAttemptView& view);

// RFC 3339 "2026-11-22T21:00:00Z" (or with fractions) into Unix ms; nullopt when malformed.
std::optional<int64_t> ParseKubeTime(const std::string& text);

}  // namespace dlab
