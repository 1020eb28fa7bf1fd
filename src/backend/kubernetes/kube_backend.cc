#include "backend/kubernetes/kube_backend.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/local/attempt_files.h"
#include "backend/local/shim_attempt.h"
#include "common/file_util.h"
#include "common/quantity.h"
#include "spdlog/spdlog.h"

namespace dlab {
namespace {

using json = nlohmann::json;

constexpr absl::string_view kCancelFile = "cancel_requested";  // dlab asked to cancel it
constexpr absl::string_view kManifestFile = "kube-job.json";   // the Job as submitted

std::string Text(const json& j, const char* a, const char* b = nullptr) {
  auto it = j.find(a);
  if (it == j.end()) return "";
  if (b != nullptr) {
    if (!it->is_object()) return "";
    auto jt = it->find(b);
    return jt != it->end() && jt->is_string() ? jt->get<std::string>() : "";
  }
  return it->is_string() ? it->get<std::string>() : "";
}

std::string Label(const json& object, const std::string& key) {
  auto m = object.find("metadata");
  if (m == object.end() || !m->contains("labels") || !(*m)["labels"].is_object()) return "";
  const json& labels = (*m)["labels"];
  auto it = labels.find(key);
  return it != labels.end() && it->is_string() ? it->get<std::string>() : "";
}

// The Job a pod belongs to, and its completion index.
std::string PodJob(const json& pod) {
  std::string name = Label(pod, "batch.kubernetes.io/job-name");
  return name.empty() ? Label(pod, "job-name") : name;
}
int PodIndex(const json& pod) {
  int index = -1;
  std::string text = Label(pod, "batch.kubernetes.io/job-completion-index");
  if (text.empty() || !absl::SimpleAtoi(text, &index)) {
    auto m = pod.find("metadata");
    if (m != pod.end() && m->contains("annotations")) {
      text = Text((*m)["annotations"], "batch.kubernetes.io/job-completion-index");
      if (!absl::SimpleAtoi(text, &index)) index = -1;
    }
  }
  return index;
}

bool MainStarted(const json& pod) {
  auto s = pod.find("status");
  if (s == pod.end() || !s->contains("containerStatuses")) return false;
  for (const json& c : (*s)["containerStatuses"]) {
    if (c.value("name", "") == "task" && c.contains("state") &&
        (c["state"].contains("running") || c["state"].contains("terminated"))) {
      return true;
    }
  }
  return false;
}

bool MainTerminated(const json& pod) {
  if (pod.contains("dlab_deleted")) return true;
  auto s = pod.find("status");
  if (s == pod.end() || !s->contains("containerStatuses")) return false;
  for (const json& c : (*s)["containerStatuses"]) {
    if (c.value("name", "") == "task" && c.contains("state") && c["state"].contains("terminated")) {
      return true;
    }
  }
  return false;
}

// A cached object: its JSON and the local sequence number of its last update.
struct Cached {
  json object;
  uint64_t seq = 0;
};

class KubeBackend final : public Backend {
 public:
  KubeBackend(KubeBackendOptions options, std::string tag, KubeClient client)
      : options_(std::move(options)), tag_(std::move(tag)), client_(std::move(client)) {
    jobs_thread_ = std::thread([this] { WatchLoop("jobs"); });
    pods_thread_ = std::thread([this] { WatchLoop("pods"); });
  }

  ~KubeBackend() override {
    stop_ = true;
    cv_.notify_all();
    jobs_thread_.join();
    pods_thread_.join();
    std::map<std::string, std::thread> followers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      followers.swap(followers_);
    }
    for (auto& [pod, t] : followers) t.join();
  }

  absl::StatusOr<std::vector<BackendNode>> Inventory() override {
    absl::StatusOr<KubeResponse> r = client_.Request("GET", "/api/v1/nodes");
    if (!r.ok()) return r.status();
    if (r->status != 200) {
      return absl::UnavailableError(absl::StrCat(
          "kubernetes: cannot list nodes (dlabd's service account needs 'list nodes', see "
          "docs/deploy-kubernetes.md): ",
          KubeErrorMessage(*r)));
    }
    std::vector<BackendNode> out;
    try {
      json list = json::parse(r->body);
      for (const json& node : list.value("items", json::array())) {
        if (node.contains("spec") && node["spec"].value("unschedulable", false)) continue;
        bool ready = false;
        for (const json& c : node["status"].value("conditions", json::array())) {
          ready = ready || (c.value("type", "") == "Ready" && c.value("status", "") == "True");
        }
        if (!ready) continue;
        const json& alloc = node["status"]["allocatable"];
        BackendNode n{.name = Text(node, "metadata", "name"), .state = "Ready"};
        if (auto cpu = ParseCpuMillis(Text(alloc, "cpu")); cpu.ok()) n.cpu_millis = *cpu;
        if (auto mem = ParseMemoryBytes(Text(alloc, "memory")); mem.ok()) n.memory_bytes = *mem;
        int gpus = 0;
        (void)absl::SimpleAtoi(Text(alloc, "nvidia.com/gpu"), &gpus);
        std::string type = Label(node, options_.objects.gpu_type_label);
        for (int i = 0; i < gpus; ++i) n.gpus.push_back({i, type, type});
        out.push_back(std::move(n));
      }
    } catch (const json::exception& e) {
      return absl::UnavailableError(absl::StrCat("kubernetes: node list: ", e.what()));
    }
    return out;
  }

  absl::Status Validate(const JobSpec& spec) override {
    if (spec.image.empty() && options_.objects.image.empty()) {
      return absl::InvalidArgumentError(
          "image: is required on this cluster (Kubernetes), which has no default image "
          "(backend.image); name the container image the job runs in, e.g. "
          "image: ghcr.io/team/train:1.0");
    }
    return absl::OkStatus();
  }

  absl::Status Launch(const LaunchRequest& request) override {
    const std::string& dir = request.attempt_dir;
    if (absl::Status s = CheckLaunchRequest(request); !s.ok()) return s;
    absl::StatusOr<KubeManifests> m = AttemptManifests(request, options_.objects, tag_);
    if (!m.ok()) return m.status();
    const std::string name = KubeObjectName(tag_, request.job_id, request.attempt);
    if (auto h = request.tasks[0].env.find("DLAB_HOSTFILE"); h != request.tasks[0].env.end()) {
      (void)WriteFileAtomically(h->second, m->hostfile, {.sync = false});
    }
    std::string launch_file = AttemptFile(dir, kLaunchFile);
    LaunchSpec spec = ToLaunchSpec(request, "");
    if (auto s = WriteLaunchSpec(launch_file, spec); !s.ok()) {
      return absl::InternalError(s.message());
    }
    (void)WriteFileAtomically(AttemptFile(dir, kManifestFile), m->job.dump(2) + "\n",
                              {.sync = false});
    Track(dir, name, spec);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = attempts_.find(name); it != attempts_.end()) it->second.launched_here = true;
    }
    absl::StatusOr<KubeResponse> r =
        client_.Request("POST", Collection("batch/v1", "jobs"), m->job.dump());
    if (!r.ok() || r->status != 201) {
      Untrack(name);
      unlink(launch_file.c_str());
      return absl::UnavailableError(
          absl::StrCat("kubernetes: cannot create Job ", name, ": ",
                       r.ok() ? KubeErrorMessage(*r) : r.status().message()));
    }
    json job = json::parse(r->body, nullptr, false);
    Update("jobs", "ADDED", job);
    m->service["metadata"]["ownerReferences"] = json::array({OwnerReference(job)});
    absl::StatusOr<KubeResponse> s =
        client_.Request("POST", Collection("v1", "services"), m->service.dump());
    if (!s.ok() || (s->status != 201 && s->status != 409)) {
      // Without it the ranks cannot find rank 0: take the Job back, and say why.
      DeleteJob(name).IgnoreError();
      Untrack(name);
      unlink(launch_file.c_str());
      return absl::UnavailableError(
          absl::StrCat("kubernetes: cannot create Service ", name, ": ",
                       s.ok() ? KubeErrorMessage(*s) : s.status().message()));
    }
    Evaluate(name);
    return absl::OkStatus();
  }

  absl::StatusOr<AttemptStatus> Inspect(const std::string& attempt_dir) override {
    absl::StatusOr<LaunchSpec> spec = ReadLaunchSpec(AttemptFile(attempt_dir, kLaunchFile));
    if (absl::IsNotFound(spec.status())) {
      return absl::NotFoundError(absl::StrCat("attempt ", attempt_dir, " was never launched"));
    }
    if (!spec.ok()) return spec.status();
    std::string name = KubeObjectName(tag_, spec->job_id, spec->attempt);
    if (!FileExists(AttemptFile(attempt_dir, kExitFile))) {
      Track(attempt_dir, name, *spec);
      Evaluate(name);
    }
    auto alive = [&] {
      std::lock_guard<std::mutex> lock(mu_);
      return !synced_jobs_ || !synced_pods_ || jobs_.contains(name);
    };
    absl::StatusOr<AttemptStatus> status = ReadAttemptStatus(attempt_dir, alive);
    if (status.ok() && status->phase == AttemptPhase::kLost) {
      status->message = "kubernetes: the attempt's Job is gone and its end was not recorded";
    }
    return status;
  }

  absl::Status Cancel(const std::string& attempt_dir) override {
    absl::StatusOr<LaunchSpec> spec = ReadLaunchSpec(AttemptFile(attempt_dir, kLaunchFile));
    if (!spec.ok()) {
      return absl::NotFoundError(absl::StrCat("attempt ", attempt_dir, " was never launched"));
    }
    if (FileExists(AttemptFile(attempt_dir, kExitFile))) return absl::OkStatus();
    (void)WriteFileAtomically(AttemptFile(attempt_dir, kCancelFile), "", {.sync = false});
    std::string name = KubeObjectName(tag_, spec->job_id, spec->attempt);
    Track(attempt_dir, name, *spec);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = attempts_.find(name); it != attempts_.end()) it->second.cancel_requested = true;
    }
    absl::Status s = DeleteJob(name);
    Evaluate(name);
    return s;
  }

  void SetListener(std::function<void(const std::string& attempt_dir)> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    listener_ = std::move(fn);
  }

 private:
  struct Attempt {
    std::string dir;
    int tasks = 1;
    std::vector<bool> auxiliary;
    bool cancel_requested = false;
    bool started_recorded = false;
    bool recorded = false;
    bool stopping = false;  // dlab deleted its Job (it could not start)
    // Launched by this dlabd: its Job counts as gone only once it has been seen (a pod's
    // event may arrive before the Job's). Recovered after a restart: once the caches are full.
    bool launched_here = false;
    bool job_seen = false;
    std::optional<absl::Time> ended_at;  // when the end was first judged
    std::set<std::string> following;     // pods whose log is being streamed
    std::set<std::string> followed;      // pods whose log has been streamed to its end
  };

  std::string Collection(const char* group_version, const char* resource) const {
    return absl::StrCat(
        std::string(group_version) == "v1" ? "/api/v1" : absl::StrCat("/apis/", group_version),
        "/namespaces/", options_.objects.namespace_, "/", resource);
  }

  absl::Status DeleteJob(const std::string& name) {
    absl::StatusOr<KubeResponse> r = client_.Request(
        "DELETE", absl::StrCat(Collection("batch/v1", "jobs"), "/", name),
        R"({"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"})");
    if (!r.ok()) return r.status();
    if (r->status != 200 && r->status != 202 && r->status != 404) {
      return absl::UnavailableError(
          absl::StrCat("kubernetes: cannot delete Job ", name, ": ", KubeErrorMessage(*r)));
    }
    return absl::OkStatus();
  }

  // Follows the attempt launched with `spec` (from its launch.json after a restart).
  void Track(const std::string& dir, const std::string& name, const LaunchSpec& spec) {
    std::lock_guard<std::mutex> lock(mu_);
    // Under mu_, as the end is recorded (Evaluate): an attempt whose end is on disk is done.
    if (attempts_.contains(name) || FileExists(AttemptFile(dir, kExitFile))) return;
    auto it = attempts_.try_emplace(name).first;
    it->second.dir = dir;
    it->second.tasks = static_cast<int>(spec.tasks.size());
    for (const TaskSpec& t : spec.tasks) it->second.auxiliary.push_back(t.auxiliary);
    it->second.cancel_requested = FileExists(AttemptFile(dir, kCancelFile));
    it->second.started_recorded = FileExists(AttemptFile(dir, kStartedFile));
  }

  void Untrack(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    attempts_.erase(name);
  }

  // Applies one watch event (or list item) to the cache and re-judges the attempt concerned.
  void Update(const std::string& resource, const std::string& type, json object) {
    if (!object.is_object()) return;
    std::string name = Text(object, "metadata", "name");
    std::string job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& cache = resource == "jobs" ? jobs_ : pods_;
      job = resource == "jobs" ? name : PodJob(object);
      auto attempt = attempts_.find(job);
      bool followed = attempt != attempts_.end() && !attempt->second.recorded;
      if (type == "DELETED" && (resource == "jobs" || !followed)) {
        cache.erase(name);
      } else {
        // A deleted pod of an attempt in flight keeps its last status until the end is known.
        if (type == "DELETED") object["dlab_deleted"] = true;
        cache[name] = {std::move(object), ++seq_};
      }
    }
    if (!job.empty()) Evaluate(job);
  }

  // Lists, then watches, one resource of this dlabd's attempts; for ever, until stop_.
  void WatchLoop(const char* resource) {
    const bool jobs = std::string(resource) == "jobs";
    const std::string path = Collection(jobs ? "batch/v1" : "v1", resource);
    const std::string selector = absl::StrCat("labelSelector=dlab.io%2Finstance%3D", tag_);
    std::string version;  // "" : list first
    while (!stop_) {
      if (version.empty()) {
        uint64_t before;
        {
          std::lock_guard<std::mutex> lock(mu_);
          before = seq_;
        }
        absl::StatusOr<KubeResponse> r = client_.Request("GET", absl::StrCat(path, "?", selector));
        json list = r.ok() && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
        if (!list.is_object()) {
          spdlog::warn("kubernetes: list {}: {}", resource,
                       r.ok() ? KubeErrorMessage(*r) : std::string(r.status().message()));
          Pause(absl::Seconds(1));
          continue;
        }
        std::set<std::string> present;
        for (json& item : list.value("items", json::array())) {
          present.insert(Text(item, "metadata", "name"));
          Update(resource, "ADDED", std::move(item));
        }
        std::vector<std::string> gone;
        {
          std::lock_guard<std::mutex> lock(mu_);
          auto& cache = jobs ? jobs_ : pods_;
          for (const auto& [name, c] : cache) {
            if (!present.contains(name) && c.seq <= before && !c.object.contains("dlab_deleted")) {
              gone.push_back(name);
            }
          }
          (jobs ? synced_jobs_ : synced_pods_) = true;
        }
        for (const std::string& name : gone) {  // deleted while nobody watched
          json object;
          {
            std::lock_guard<std::mutex> lock(mu_);
            auto& cache = jobs ? jobs_ : pods_;
            object = cache[name].object;
          }
          Update(resource, "DELETED", std::move(object));
        }
        version = Text(list, "metadata", "resourceVersion");
        if (version.empty()) version = "0";
      }
      std::string buffer;
      bool expired = false;
      absl::StatusOr<long> status = client_.Stream(
          absl::StrCat(path, "?", selector, "&watch=true&allowWatchBookmarks=true&resourceVersion=",
                       version, "&timeoutSeconds=", absl::ToInt64Seconds(options_.watch_timeout)),
          [&](absl::string_view chunk) {
            buffer.append(chunk.data(), chunk.size());
            size_t start = 0;
            for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
              json event = json::parse(buffer.substr(start, nl - start), nullptr, false);
              if (!event.is_object()) continue;
              std::string type = event.value("type", "");
              json& object = event["object"];
              if (type == "ERROR") {
                expired = object.is_object() && object.value("code", 0) == 410;
                if (!expired) spdlog::warn("kubernetes: watch {}: {}", resource, object.dump());
                continue;
              }
              std::string rv = Text(object, "metadata", "resourceVersion");
              if (!rv.empty()) version = rv;
              if (type != "BOOKMARK") Update(resource, type, std::move(object));
            }
            buffer.erase(0, start);
            return !stop_;
          },
          &stop_);
      if (stop_) break;
      if (expired || !status.ok() || *status != 200) {
        // 410 Gone: the history has moved past our version; anything else: start over too.
        if (!status.ok())
          spdlog::warn("kubernetes: watch {}: {}", resource,
                       std::string(status.status().message()));
        if (status.ok() && *status == 410) expired = true;
        version.clear();
        if (!expired) Pause(absl::Seconds(1));
      }
    }
  }

  void Pause(absl::Duration d) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(d), [this] { return stop_.load(); });
  }

  // Judges the attempt from what the cache holds and records what changed: the start, the
  // end (once every pod's log has been read to its end), log streams for started pods.
  void Evaluate(const std::string& name) {
    std::string dir;
    bool notify = false;
    bool delete_job = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = attempts_.find(name);
      if (it == attempts_.end() || it->second.recorded) return;
      Attempt& a = it->second;
      dir = a.dir;
      KubeAttemptView view{
          .tasks = a.tasks, .auxiliary = a.auxiliary, .cancel_requested = a.cancel_requested};
      if (auto j = jobs_.find(name); j != jobs_.end()) {
        view.job = j->second.object;
        a.job_seen = true;
      }
      // Only judge a Job that is gone once the caches have been filled.
      if (!view.job && (!(synced_jobs_ && synced_pods_) || (a.launched_here && !a.job_seen))) {
        return;
      }
      std::vector<std::pair<std::string, int>> start_following;
      for (const auto& [pod_name, c] : pods_) {
        if (PodJob(c.object) != name) continue;
        int index = PodIndex(c.object);
        if (index < 0) continue;
        view.pods[index] = c.object;
        if (MainStarted(c.object) && !a.following.contains(pod_name) &&
            !a.followed.contains(pod_name)) {
          start_following.emplace_back(pod_name, index);
        }
      }
      for (const auto& [pod_name, index] : start_following) StartFollower(name, a, pod_name, index);
      KubeVerdict verdict = JudgeAttempt(view);
      if (verdict.start_ms && !a.started_recorded) {
        StartedRecord started{.start_time_ms = *verdict.start_ms, .limit_notes = LimitNotes(dir)};
        if (WriteStartedRecord(AttemptFile(dir, kStartedFile), started).ok()) {
          a.started_recorded = true;
          notify = true;
        }
      }
      if (verdict.kind == KubeVerdict::kEnded) {
        if (verdict.stop_job && !a.stopping) {
          a.stopping = true;
          delete_job = true;
        }
        if (!a.ended_at) a.ended_at = absl::Now();
        // The log is complete once every follower has read its pod's stream to the end; a
        // stream that does not end (the pod is gone) is given up on after 10 s.
        if (!a.following.empty() && absl::Now() - *a.ended_at < absl::Seconds(10)) {
          ScheduleRecheck(name);
        } else {
          if (auto s = WriteExitRecord(AttemptFile(dir, kExitFile), verdict.exit); s.ok()) {
            a.recorded = true;
            notify = true;
            for (auto p = pods_.begin(); p != pods_.end();) {  // deleted pods: no longer needed
              if (p->second.object.contains("dlab_deleted") && PodJob(p->second.object) == name) {
                p = pods_.erase(p);
              } else {
                ++p;
              }
            }
            attempts_.erase(it);  // its end is on disk: Inspect reads it from there
          } else {
            spdlog::error("kubernetes: {}: cannot record the end: {}", dir, s.ToString());
          }
        }
      }
    }
    if (delete_job) DeleteJob(name).IgnoreError();
    if (notify) Notify(dir);
  }

  std::vector<std::string> LimitNotes(const std::string& dir) {
    absl::StatusOr<LaunchSpec> spec = ReadLaunchSpec(AttemptFile(dir, kLaunchFile));
    if (!spec.ok() || spec->tasks.empty()) return {};
    const TaskSpec& t = spec->tasks[0];
    std::vector<std::string> notes;
    if (t.cpu_millis > 0) {
      notes.push_back(absl::StrCat("cpu: ", FormatCpuMillis(t.cpu_millis),
                                   " CPUs per pod, enforced by Kubernetes (limits.cpu)"));
    }
    if (t.memory_bytes > 0) {
      notes.push_back(absl::StrCat("memory: ", FormatMemoryBytes(t.memory_bytes),
                                   " per pod, enforced by Kubernetes (limits.memory)"));
    }
    if (!t.gpus.empty()) {
      notes.push_back(absl::StrCat("gpus: ", t.gpus.size(),
                                   " per pod, granted by the device plugin (nvidia.com/gpu)"));
    }
    return notes;
  }

  void ScheduleRecheck(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (rechecks_.insert(name).second && !recheck_thread_started_) {
      recheck_thread_started_ = true;
      followers_["#recheck"] = std::thread([this] { RecheckLoop(); });
    }
    cv_.notify_all();
  }

  // Evaluates attempts whose end waits for their logs, once a second.
  void RecheckLoop() {
    while (!stop_) {
      Pause(absl::Seconds(1));
      std::set<std::string> names;
      {
        std::lock_guard<std::mutex> lock(mu_);
        names.swap(rechecks_);
      }
      for (const std::string& name : names) Evaluate(name);
    }
  }

  void Notify(const std::string& dir) {
    std::function<void(const std::string&)> listener;
    {
      std::lock_guard<std::mutex> lock(mu_);
      listener = listener_;
    }
    if (listener) listener(dir);
  }

  // Streams a pod's log into the task's log file (and, for a gang, into the attempt's log
  // with "[rank N] " before every line), from where the file ends: after a dlabd restart
  // nothing is written twice.
  void StartFollower(const std::string& name, Attempt& a, const std::string& pod, int rank)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<LaunchSpec> spec = ReadLaunchSpec(AttemptFile(a.dir, kLaunchFile));
    if (!spec.ok() || rank >= static_cast<int>(spec->tasks.size())) return;
    for (const std::string& done : finished_) {  // past their last use of mu_: join now
      followers_[done].join();
      followers_.erase(done);
    }
    finished_.clear();
    if (followers_.contains(pod)) return;  // a follower of this pod is still streaming it
    a.following.insert(pod);
    std::string task_log = spec->tasks[rank].log_path;
    std::string gang_log = spec->tasks.size() > 1 ? spec->log_path : "";
    followers_[pod] = std::thread([this, name, pod, rank, task_log, gang_log] {
      Follow(pod, rank, task_log, gang_log);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (auto it = attempts_.find(name); it != attempts_.end()) {
          it->second.following.erase(pod);
          it->second.followed.insert(pod);
        }
      }
      Evaluate(name);
      std::lock_guard<std::mutex> lock(mu_);
      finished_.push_back(pod);
    });
  }

  void Follow(const std::string& pod, int rank, const std::string& task_log,
              const std::string& gang_log) {
    const std::string path =
        absl::StrCat(Collection("v1", "pods"), "/", pod, "/log?container=task&follow=true");
    std::string partial;  // of the current line, for the gang log
    auto gang_write = [&](absl::string_view data, bool flush) {
      if (gang_log.empty()) return;
      partial.append(data.data(), data.size());
      std::string out;
      size_t start = 0;
      for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
        absl::StrAppend(&out, "[rank ", rank, "] ", partial.substr(start, nl + 1 - start));
      }
      partial.erase(0, start);
      if (flush && !partial.empty()) {
        absl::StrAppend(&out, "[rank ", rank, "] ", partial, "\n");
        partial.clear();
      }
      if (!out.empty()) AppendTo(gang_log, out);
    };
    int tries_after_end = 0;
    while (!stop_) {
      std::error_code ec;
      auto size = std::filesystem::file_size(task_log, ec);
      int64_t skip = ec ? 0 : static_cast<int64_t>(size);
      absl::StatusOr<long> status = client_.Stream(
          path,
          [&](absl::string_view chunk) {
            if (skip > 0) {
              size_t n = std::min<size_t>(skip, chunk.size());
              chunk.remove_prefix(n);
              skip -= n;
            }
            if (!chunk.empty()) {
              AppendTo(task_log, chunk);
              gang_write(chunk, false);
            }
            return true;
          },
          &stop_);
      if (stop_) break;
      bool done = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = pods_.find(pod);
        done = it == pods_.end() || MainTerminated(it->second.object) ||
               (status.ok() && *status == 404);
      }
      // Read to its end once the container has ended; a pod that is gone, or a stream that
      // keeps failing after the end, is given a few more tries.
      if (done && ((status.ok() && *status == 200) || ++tries_after_end > 3)) break;
      Pause(absl::Milliseconds(500));  // not started yet, or the stream broke: again
    }
    gang_write("", true);
  }

  static void AppendTo(const std::string& path, absl::string_view data) {
    FILE* f = std::fopen(path.c_str(), "ab");
    if (f == nullptr) return;
    std::fwrite(data.data(), 1, data.size(), f);
    std::fclose(f);
  }

  const KubeBackendOptions options_;
  const std::string tag_;
  const KubeClient client_;
  std::atomic<bool> stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Cached> jobs_ ABSL_GUARDED_BY(mu_);  // by name
  std::map<std::string, Cached> pods_ ABSL_GUARDED_BY(mu_);  // by name
  bool synced_jobs_ ABSL_GUARDED_BY(mu_) = false;
  bool synced_pods_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Attempt> attempts_ ABSL_GUARDED_BY(mu_);  // by Job name
  std::set<std::string> rechecks_ ABSL_GUARDED_BY(mu_);
  bool recheck_thread_started_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::thread> followers_ ABSL_GUARDED_BY(mu_);  // by pod name
  std::vector<std::string> finished_ ABSL_GUARDED_BY(mu_);             // followers that are done
  std::function<void(const std::string&)> listener_ ABSL_GUARDED_BY(mu_);
  std::thread jobs_thread_;
  std::thread pods_thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> NewKubeBackend(KubeBackendOptions options) {
  absl::StatusOr<KubeConnection> connection =
      options.objects.kubeconfig.empty()
          ? InClusterConnection()
          : LoadKubeconfig(options.objects.kubeconfig, options.objects.context);
  if (!connection.ok()) return connection.status();
  if (options.objects.namespace_.empty()) {
    options.objects.namespace_ =
        connection->namespace_.empty() ? "default" : connection->namespace_;
  }
  KubeClient client(*connection, options.request_timeout);
  std::string probe =
      absl::StrCat("/apis/batch/v1/namespaces/", options.objects.namespace_, "/jobs?limit=1");
  absl::StatusOr<KubeResponse> r = client.Request("GET", probe);
  if (!r.ok()) return absl::UnavailableError(r.status().message());
  if (r->status != 200) {
    return absl::UnavailableError(absl::StrCat("kubernetes: cannot list Jobs in namespace ",
                                               options.objects.namespace_, ": ",
                                               KubeErrorMessage(*r)));
  }
  std::error_code ec;
  std::filesystem::path data_dir = std::filesystem::weakly_canonical(options.objects.data_dir, ec);
  options.objects.data_dir = data_dir.string();
  std::string tag = NotifySocketName(data_dir.string()).substr(5, 8);  // after "dlab-"
  return std::make_unique<KubeBackend>(std::move(options), std::move(tag), std::move(client));
}

}  // namespace dlab
