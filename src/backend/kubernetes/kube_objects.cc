#include "backend/kubernetes/kube_objects.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/quantity.h"
#include "common/tasks.h"

namespace dlab {
namespace {

using json = nlohmann::json;

constexpr char kIndexAnnotation[] = "batch.kubernetes.io/job-completion-index";
constexpr char kTaskContainer[] = "task";
constexpr char kCodeContainer[] = "code";

// Kubernetes expands $(VAR) in env values, command and args, and turns "$$" into "$": doubling
// every '$' keeps a string as written.
std::string Literal(const std::string& s) { return absl::StrReplaceAll(s, {{"$", "$$"}}); }

json LiteralArray(const std::vector<std::string>& v) {
  json out = json::array();
  for (const std::string& s : v) out.push_back(Literal(s));
  return out;
}

// A POSIX shell word that stands for s exactly.
std::string ShellQuote(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

int64_t CeilSeconds(absl::Duration d) {
  return static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(d)));
}

// "0-2,4": the ranges of a sorted list of indexes.
std::string IndexRanges(const std::vector<int>& indexes) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < indexes.size();) {
    size_t j = i;
    while (j + 1 < indexes.size() && indexes[j + 1] == indexes[j] + 1) ++j;
    parts.push_back(i == j ? absl::StrCat(indexes[i]) : absl::StrCat(indexes[i], "-", indexes[j]));
    i = j + 1;
  }
  return absl::StrJoin(parts, ",");
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

const json* Find(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

std::string Text(const json& j, std::initializer_list<const char*> path) {
  const json* v = Find(j, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

// The status of the named container (or init container) of a pod; nullptr when none yet.
const json* ContainerStatus(const json& pod, const char* list, const char* name) {
  const json* statuses = Find(pod, {"status", list});
  if (statuses == nullptr || !statuses->is_array()) return nullptr;
  for (const json& s : *statuses) {
    if (s.is_object() && s.value("name", "") == name) return &s;
  }
  return nullptr;
}

bool HasCondition(const json& object, const std::string& type, std::string* reason = nullptr,
                  std::string* message = nullptr) {
  const json* conditions = Find(object, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return false;
  for (const json& c : *conditions) {
    if (c.is_object() && c.value("type", "") == type && c.value("status", "") == "True") {
      if (reason) *reason = c.value("reason", "");
      if (message) *message = c.value("message", "");
      return true;
    }
  }
  return false;
}

// A container waiting for a reason that never passes by itself.
bool StuckWaiting(const json& status, std::string* why) {
  static const std::set<std::string> kStuck = {"ImagePullBackOff",     "ErrImageNeverPull",
                                               "InvalidImageName",     "CreateContainerConfigError",
                                               "CreateContainerError", "RunContainerError"};
  const json* waiting = Find(status, {"state", "waiting"});
  if (waiting == nullptr) return false;
  std::string reason = waiting->value("reason", "");
  if (!kStuck.contains(reason)) return false;
  *why = absl::StrCat(reason, ": ", waiting->value("message", ""));
  return true;
}

TaskExit TaskExitOf(int rank, const json* terminated) {
  TaskExit e{.rank = rank, .exit_code = 128 + SIGKILL, .signal = "SIGKILL", .end_reason = "lost"};
  if (terminated == nullptr) return e;
  e.exit_code = terminated->value("exitCode", 0);
  e.signal = e.exit_code > 128 && e.exit_code < 128 + 65 ? SignalName(e.exit_code - 128) : "";
  e.end_reason = terminated->value("reason", "") == "OOMKilled" ? "oom_killed" : "exited";
  return e;
}

std::string How(const TaskExit& e) {
  if (e.end_reason == "oom_killed") return "was killed for exceeding its memory limit (OOMKilled)";
  if (!e.signal.empty()) return absl::StrCat("killed by ", e.signal);
  return absl::StrCat("exited with code ", e.exit_code);
}

}  // namespace

std::string KubeObjectName(const std::string& tag, int64_t job_id, int attempt) {
  return absl::StrCat("dlab-", tag, "-", job_id, "-", attempt);
}

std::string KubePodHost(const std::string& name, int rank) {
  return absl::StrCat(name, "-", rank, ".", name);
}

std::map<std::string, std::string> KubeLabels(const std::string& tag, const LaunchRequest& r) {
  return {{"app.kubernetes.io/managed-by", "dlab"},
          {"dlab.io/instance", tag},
          {"dlab.io/job", absl::StrCat(r.job_id)},
          {"dlab.io/attempt", absl::StrCat(r.attempt)},
          {"dlab.io/tenant", absl::StrCat(r.tenant_id)}};
}

json OwnerReference(const json& job) {
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"name", Text(job, {"metadata", "name"})},
          {"uid", Text(job, {"metadata", "uid"})},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

absl::StatusOr<KubeManifests> AttemptManifests(const LaunchRequest& request,
                                               const KubeOptions& options, const std::string& tag) {
  const std::string name = KubeObjectName(tag, request.job_id, request.attempt);
  const std::string image = request.image.empty() ? options.image : request.image;
  if (image.empty()) {
    return absl::InvalidArgumentError(
        "the job names no image, and the Kubernetes backend has no default (backend.image)");
  }
  const int n = static_cast<int>(request.tasks.size());
  if (n == 0) return absl::InvalidArgumentError("launch: no task");

  // The distributed contract as the pods see it: rank r is pod NAME-r, each on its own
  // address (ports need not differ), its GPUs the first ones the container sees.
  std::vector<TaskInfo> infos;
  GangPlacement placement{.master_port = options.master_port};
  bool roles = false;
  for (const TaskLaunch& t : request.tasks) {
    if (t.argv.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("launch: task ", t.rank, " has an empty argv"));
    }
    infos.push_back({.rank = t.rank, .role = t.role, .role_index = t.role_index});
    placement.hosts.push_back(KubePodHost(name, t.rank));
    std::vector<int> gpus(t.allocation.gpus.size());
    for (size_t i = 0; i < gpus.size(); ++i) gpus[i] = static_cast<int>(i);
    placement.gpus.push_back(std::move(gpus));
    roles = roles || !t.role.empty();
  }
  if (roles) placement.task_ports.assign(n, options.task_port);
  auto hostfile = request.tasks[0].env.find("DLAB_HOSTFILE");
  placement.hostfile = hostfile == request.tasks[0].env.end() ? "" : hostfile->second;
  std::vector<std::map<std::string, std::string>> dist = TaskEnvironments(infos, placement);

  std::vector<std::map<std::string, std::string>> env(n);
  for (int r = 0; r < n; ++r) {
    env[r] = request.env;
    for (const auto& [k, v] : request.tasks[r].env) env[r][k] = v;
    for (const auto& [k, v] : dist[r]) env[r][k] = v;
    if (!options.api_url.empty()) env[r]["DLAB_API_URL"] = options.api_url;
  }
  // Variables alike in every pod go in the container's env; those equal to the rank come from
  // the completion index; what else differs (TF_CONFIG, roles, commands) a shell selects.
  json container_env = json::array();
  std::set<std::string> per_rank;
  for (const auto& [key, value] : env[0]) {
    bool same = true, rank = n > 1;
    for (int r = 0; r < n; ++r) {
      auto it = env[r].find(key);
      same = same && it != env[r].end() && it->second == value;
      rank = rank && it != env[r].end() && it->second == absl::StrCat(r);
    }
    if (same) {
      container_env.push_back({{"name", key}, {"value", Literal(value)}});
    } else if (rank) {
      container_env.push_back(
          {{"name", key},
           {"valueFrom",
            {{"fieldRef",
              {{"fieldPath", absl::StrCat("metadata.annotations['", kIndexAnnotation, "']")}}}}}});
    } else {
      per_rank.insert(key);
    }
  }
  for (int r = 1; r < n; ++r) {
    for (const auto& [key, value] : env[r]) {
      if (!env[0].contains(key)) per_rank.insert(key);
    }
  }
  bool same_argv =
      std::all_of(request.tasks.begin(), request.tasks.end(),
                  [&](const TaskLaunch& t) { return t.argv == request.tasks[0].argv; });
  json command;
  if (per_rank.empty() && same_argv) {
    command = LiteralArray(request.tasks[0].argv);
  } else {
    std::string script = "case \"$JOB_COMPLETION_INDEX\" in\n";
    for (int r = 0; r < n; ++r) {
      absl::StrAppend(&script, r, ")");
      for (const std::string& key : per_rank) {
        auto it = env[r].find(key);
        if (it != env[r].end())
          absl::StrAppend(&script, " export ", key, "=", ShellQuote(it->second), ";");
      }
      std::vector<std::string> words;
      for (const std::string& a : request.tasks[r].argv) words.push_back(ShellQuote(a));
      absl::StrAppend(&script, " exec ", absl::StrJoin(words, " "), " ;;\n");
    }
    absl::StrAppend(&script,
                    "*) echo \"dlab: no task for completion index $JOB_COMPLETION_INDEX\" >&2; "
                    "exit 127 ;;\nesac\n");
    command = LiteralArray({"/bin/sh", "-c", script, "dlab-task"});
  }

  // One pod template: every pod asks for what the largest task holds.
  TaskAllocation share = LargestTaskShare(request.tasks);
  int64_t cpu = share.cpu_millis, memory = share.memory_bytes;
  size_t gpus = share.gpus.size();
  json requests = json::object(), limits = json::object();
  if (cpu > 0) requests["cpu"] = limits["cpu"] = FormatCpuMillis(cpu);
  if (memory > 0) requests["memory"] = limits["memory"] = FormatMemoryBytes(memory);
  if (gpus > 0) limits["nvidia.com/gpu"] = absl::StrCat(gpus);

  // The workdir, relative to the snapshot's root.
  std::string code_root = absl::StrCat(request.attempt_dir, "/code");
  std::string workdir = options.code_mount;
  if (absl::string_view rel = request.workdir; absl::ConsumePrefix(&rel, code_root)) {
    absl::StrAppend(&workdir, rel);
  }
  json mounts = json::array({{{"name", "code"}, {"mountPath", options.code_mount}},
                             {{"name", "data"}, {"mountPath", options.data_dir}}});
  json container = {
      {"name", kTaskContainer}, {"image", image},
      {"command", command},     {"workingDir", workdir},
      {"env", container_env},   {"resources", {{"requests", requests}, {"limits", limits}}},
      {"volumeMounts", mounts}};
  if (roles) {
    container["ports"] = json::array({{{"name", "task"}, {"containerPort", options.task_port}}});
  } else if (n > 1) {
    container["ports"] =
        json::array({{{"name", "master"}, {"containerPort", options.master_port}}});
  }
  json data_volume = {{"name", "data"}};
  if (options.data_claim.empty()) {
    data_volume["emptyDir"] = json::object();
  } else {
    data_volume["persistentVolumeClaim"] = {{"claimName", options.data_claim}};
  }
  json pod_spec = {
      {"restartPolicy", "Never"},
      {"subdomain", name},
      {"enableServiceLinks", false},
      {"automountServiceAccountToken", false},
      {"terminationGracePeriodSeconds", CeilSeconds(request.kill_grace)},
      {"containers", json::array({container})},
      {"volumes", json::array({{{"name", "code"}, {"emptyDir", json::object()}}, data_volume})}};
  if (!request.snapshot.empty()) {
    auto token = env[0].find("DLAB_TOKEN");
    std::string fetch =
        "wget -q -O \"$DLAB_CODE_DIR/.snapshot.tar.gz\" --header \"Authorization: Bearer "
        "$DLAB_TOKEN\" \"$DLAB_CODE_URL\" && tar -xzf \"$DLAB_CODE_DIR/.snapshot.tar.gz\" -C "
        "\"$DLAB_CODE_DIR\" && rm -f \"$DLAB_CODE_DIR/.snapshot.tar.gz\"";
    std::string api = options.api_url.empty() ? env[0]["DLAB_API_URL"] : options.api_url;
    pod_spec["initContainers"] = json::array(
        {{{"name", kCodeContainer},
          {"image", options.init_image},
          {"command", LiteralArray({"sh", "-c", fetch})},
          {"env", json::array(
                      {{{"name", "DLAB_CODE_URL"},
                        {"value", Literal(absl::StrCat(absl::StripSuffix(api, "/"), "/api/v1/jobs/",
                                                       request.job_id, "/code"))}},
                       {{"name", "DLAB_TOKEN"},
                        {"value", Literal(token == env[0].end() ? "" : token->second)}},
                       {{"name", "DLAB_CODE_DIR"}, {"value", Literal(options.code_mount)}}})},
          {"volumeMounts", json::array({{{"name", "code"}, {"mountPath", options.code_mount}}})}}});
  }
  if (!options.service_account.empty()) pod_spec["serviceAccountName"] = options.service_account;
  if (!options.image_pull_secrets.empty()) {
    json secrets = json::array();
    for (const std::string& s : options.image_pull_secrets) secrets.push_back({{"name", s}});
    pod_spec["imagePullSecrets"] = secrets;
  }
  if (gpus > 0 && !request.acceptable_gpu_types.empty()) {
    json types = json::array();
    for (absl::string_view t :
         absl::StrSplit(request.acceptable_gpu_types, ',', absl::SkipEmpty())) {
      types.push_back(std::string(absl::StripAsciiWhitespace(t)));
    }
    pod_spec["affinity"] = {
        {"nodeAffinity",
         {{"requiredDuringSchedulingIgnoredDuringExecution",
           {{"nodeSelectorTerms",
             json::array({{{"matchExpressions", json::array({{{"key", options.gpu_type_label},
                                                              {"operator", "In"},
                                                              {"values", types}}})}}})}}}}}};
  }

  json labels = KubeLabels(tag, request);
  json job_spec = {{"completionMode", "Indexed"},
                   {"completions", n},
                   {"parallelism", n},
                   {"backoffLimit", 0},
                   {"ttlSecondsAfterFinished", options.ttl_after_finished_s},
                   {"template", {{"metadata", {{"labels", labels}}}, {"spec", pod_spec}}}};
  if (request.max_runtime > absl::ZeroDuration()) {
    job_spec["activeDeadlineSeconds"] = CeilSeconds(request.max_runtime);
  }
  std::vector<int> main_ranks;
  for (const TaskLaunch& t : request.tasks) {
    if (!t.auxiliary) main_ranks.push_back(t.rank);
  }
  if (!main_ranks.empty() && static_cast<int>(main_ranks.size()) < n) {
    // Done once every main task has succeeded; the auxiliary ones (parameter servers) are
    // then stopped.
    job_spec["successPolicy"] = {
        {"rules", json::array({{{"succeededIndexes", IndexRanges(main_ranks)}}})}};
  }
  KubeManifests out;
  out.job = {{"apiVersion", "batch/v1"},
             {"kind", "Job"},
             {"metadata", {{"name", name}, {"namespace", options.namespace_}, {"labels", labels}}},
             {"spec", job_spec}};
  json service_ports = json::array();
  service_ports.push_back({{"name", "master"}, {"port", options.master_port}});
  out.service = {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", name}, {"namespace", options.namespace_}, {"labels", labels}}},
      {"spec",
       {{"clusterIP", "None"},
        {"publishNotReadyAddresses", true},
        {"selector", {{"batch.kubernetes.io/job-name", name}}},
        {"ports", service_ports}}}};
  out.hostfile = HostfileText(placement.hosts);
  return out;
}

std::optional<int64_t> ParseKubeTime(const std::string& text) {
  absl::Time t;
  std::string error;
  if (text.empty() || !absl::ParseTime(absl::RFC3339_full, text, &t, &error)) return std::nullopt;
  return absl::ToUnixMillis(t);
}

KubeVerdict JudgeAttempt(const KubeAttemptView& view) {
  KubeVerdict verdict;
  // When the first task started.
  for (const auto& [index, pod] : view.pods) {
    const json* main = ContainerStatus(pod, "containerStatuses", kTaskContainer);
    if (main == nullptr) continue;
    std::string started = Text(*main, {"state", "running", "startedAt"});
    if (started.empty()) started = Text(*main, {"state", "terminated", "startedAt"});
    if (auto ms = ParseKubeTime(started); ms && (!verdict.start_ms || *ms < *verdict.start_ms)) {
      verdict.start_ms = ms;
    }
  }
  auto end_time = [&] {
    int64_t latest = 0;
    for (const auto& [index, pod] : view.pods) {
      const json* main = ContainerStatus(pod, "containerStatuses", kTaskContainer);
      if (main == nullptr) continue;
      latest = std::max(
          latest, ParseKubeTime(Text(*main, {"state", "terminated", "finishedAt"})).value_or(0));
    }
    return latest > 0 ? latest : absl::ToUnixMillis(absl::Now());
  };

  // Pods that cannot start: their image cannot be pulled, their config is wrong. Kubernetes
  // would retry for ever.
  if (!view.cancel_requested) {
    for (const auto& [index, pod] : view.pods) {
      for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
        const json* statuses = Find(pod, {"status", list});
        if (statuses == nullptr || !statuses->is_array()) continue;
        for (const json& s : *statuses) {
          std::string why;
          if (!StuckWaiting(s, &why)) continue;
          verdict.kind = KubeVerdict::kEnded;
          verdict.stop_job = true;
          verdict.exit = {
              .exit_code = 127,
              .end_reason = "exec_failed",
              .message = absl::StrCat("kubernetes: pod ", Text(pod, {"metadata", "name"}),
                                      ", container ", s.value("name", ""), ": ", why),
              .end_time_ms = absl::ToUnixMillis(absl::Now())};
          return verdict;
        }
      }
    }
  }

  std::string job_reason, job_message;
  bool job_failed = view.job && HasCondition(*view.job, "Failed", &job_reason, &job_message);
  bool job_complete = view.job && HasCondition(*view.job, "Complete");
  bool job_over = !view.job || job_failed || job_complete;
  if (!job_over) {
    verdict.kind = verdict.start_ms ? KubeVerdict::kRunning : KubeVerdict::kPending;
    for (const auto& [index, pod] : view.pods) {
      std::string reason, message;
      if (Text(pod, {"status", "phase"}) == "Pending") {
        const json* conditions = Find(pod, {"status", "conditions"});
        if (conditions && conditions->is_array()) {
          for (const json& c : *conditions) {
            if (c.value("type", "") == "PodScheduled" && c.value("status", "") == "False") {
              verdict.waiting = absl::StrCat(c.value("reason", ""), ": ", c.value("message", ""));
            }
          }
        }
      }
    }
    return verdict;
  }
  // The Job is over (or gone): wait until every pod it had has ended too, so that the exit
  // codes are known (the Job controller stops the rest of a failed gang).
  if (view.job) {
    for (const auto& [index, pod] : view.pods) {
      std::string phase = Text(pod, {"status", "phase"});
      bool deleted = pod.contains("dlab_deleted");
      if (!deleted && phase != "Succeeded" && phase != "Failed" &&
          !(phase == "Pending" && !ContainerStatus(pod, "containerStatuses", kTaskContainer))) {
        verdict.kind = verdict.start_ms ? KubeVerdict::kRunning : KubeVerdict::kPending;
        return verdict;
      }
    }
  }

  verdict.kind = KubeVerdict::kEnded;
  ExitRecord& record = verdict.exit;
  record.end_reason = "exited";
  record.end_time_ms = end_time();
  // How each task ended; the culprit is the first to fail by its finish time.
  std::optional<int> culprit;
  int64_t culprit_time = 0;
  std::string lost;  // why the infrastructure ended the attempt, if it did
  for (int r = 0; r < view.tasks; ++r) {
    auto it = view.pods.find(r);
    const json* pod = it == view.pods.end() ? nullptr : &it->second;
    const json* main = pod ? ContainerStatus(*pod, "containerStatuses", kTaskContainer) : nullptr;
    const json* terminated = main ? Find(*main, {"state", "terminated"}) : nullptr;
    TaskExit e = TaskExitOf(r, terminated);
    std::string pod_name = pod ? Text(*pod, {"metadata", "name"}) : "";
    std::string why, detail;
    if (pod && Text(*pod, {"status", "reason"}) == "Evicted") {
      lost = absl::StrCat("kubernetes: pod ", pod_name, " was evicted: ",
                          absl::StripAsciiWhitespace(Text(*pod, {"status", "message"})));
    } else if (pod && HasCondition(*pod, "DisruptionTarget", &why, &detail)) {
      lost = absl::StrCat("kubernetes: pod ", pod_name, " was disrupted (", why,
                          detail.empty() ? "" : ": ", detail, ")");
    } else if (pod && terminated == nullptr) {
      const json* init = ContainerStatus(*pod, "initContainerStatuses", kCodeContainer);
      const json* init_end = init ? Find(*init, {"state", "terminated"}) : nullptr;
      if (init_end && init_end->value("exitCode", 0) != 0) {
        lost = absl::StrCat("kubernetes: pod ", pod_name,
                            " could not fetch the code snapshot from dlabd (init container "
                            "exited with code ",
                            init_end->value("exitCode", 0), ")");
      }
    }
    bool failed = terminated && (e.exit_code != 0);
    if (!terminated && !view.cancel_requested && !job_complete && lost.empty() && !view.job) {
      lost = "kubernetes: the attempt's Job was deleted outside dlab";
    }
    if (failed) {
      int64_t at = ParseKubeTime(Text(*terminated, {"finishedAt"})).value_or(INT64_MAX);
      if (!culprit || at < culprit_time) {
        culprit = r;
        culprit_time = at;
      }
    }
    if (r < static_cast<int>(view.auxiliary.size()) && view.auxiliary[r] && job_complete) {
      e.end_reason = "stopped";
    }
    record.tasks.push_back(e);
  }
  if (job_complete && !view.cancel_requested) {
    record.message = view.tasks > 1 ? "all tasks exited with code 0" : "exited with code 0";
    if (culprit && !view.auxiliary.empty()) culprit.reset();  // an auxiliary task's stop
    if (!culprit) return verdict;
  }
  bool gang = view.tasks > 1;
  if (view.cancel_requested) {
    const TaskExit& e = record.tasks[0];
    record.end_reason = "cancelled";
    record.exit_code = e.end_reason == "lost" ? 128 + SIGTERM : e.exit_code;
    record.signal = e.end_reason == "lost" ? "SIGTERM" : e.signal;
    record.message = absl::StrCat("cancelled: ", How(e));
    return verdict;
  }
  if (!lost.empty()) {
    record.end_reason = "lost";
    record.exit_code = 128 + SIGKILL;
    record.signal = "SIGKILL";
    record.message = lost;
    return verdict;
  }
  if (job_failed && job_reason == "DeadlineExceeded") {
    const TaskExit& e = record.tasks[0];
    record.end_reason = "max_runtime";
    record.exit_code = e.exit_code;
    record.signal = e.signal;
    record.message = absl::StrCat("the Job's activeDeadlineSeconds passed: ", How(e));
    return verdict;
  }
  if (!culprit) {  // failed, yet no task failed: Kubernetes' word is all there is
    record.end_reason = "lost";
    record.exit_code = 128 + SIGKILL;
    record.signal = "SIGKILL";
    record.message =
        absl::StrCat("kubernetes: the Job failed (", job_reason, ": ", job_message, ")");
    return verdict;
  }
  const TaskExit& e = record.tasks[*culprit];
  record.exit_code = e.exit_code;
  record.signal = e.signal;
  if (e.end_reason == "oom_killed") record.end_reason = "oom_killed";
  record.failed_rank = gang ? *culprit : -1;
  record.message =
      gang ? absl::StrCat("task ", *culprit, " ", How(e), "; the other tasks were stopped")
           : How(e);
  for (TaskExit& t : record.tasks) {
    if (t.rank != *culprit && gang) t.end_reason = t.exit_code == 0 ? t.end_reason : "stopped";
  }
  return verdict;
}

}  // namespace dlab
