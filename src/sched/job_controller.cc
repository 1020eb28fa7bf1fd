#include "sched/job_controller.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "common/file_util.h"
#include "common/quantity.h"
#include "common/tasks.h"
#include "spdlog/spdlog.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

std::string DescribeAllocation(const Allocation& a) {
  std::string s = absl::StrCat("cpus ", FormatCpuMillis(a.cpu_millis), ", memory ",
                               FormatMemoryBytes(a.memory_bytes));
  if (!a.gpus.empty()) absl::StrAppend(&s, ", gpus [", absl::StrJoin(a.gpus, ","), "]");
  return s;
}

std::vector<Resources> TaskResources(const JobSpec& spec) {
  std::vector<Resources> out;
  for (const TaskInfo& t : ExpandTasks(spec)) out.push_back(t.resources);
  return out;
}

double Seconds(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }

int GpusOf(const std::vector<Resources>& tasks) {
  int gpus = 0;
  for (const Resources& t : tasks) gpus += t.gpus;
  return gpus;
}

// The job as the scheduler sees it; service received in earlier attempts counts (las).
JobRequest RequestOf(const JobRecord& job) {
  JobRequest r{.id = job.id,
               .tenant_id = job.tenant_id,
               .priority = job.spec.priority,
               .submit_s = Seconds(job.submit_time),
               .tasks = TaskResources(job.spec),
               .preemptible = job.spec.preemptible,
               .max_runtime_s = absl::ToDoubleSeconds(job.spec.max_runtime)};
  int gpus = GpusOf(r.tasks);
  for (const AttemptRecord& a : job.attempt_list) {
    if (a.start_time && a.end_time) {
      r.attained_gpu_s += absl::ToDoubleSeconds(*a.end_time - *a.start_time) * gpus;
    }
  }
  return r;
}

std::vector<NodeTask> NodeTasksOf(const Allocation& a) {
  std::vector<NodeTask> out;
  for (TaskAllocation t : a.tasks) {
    int node = std::exchange(t.node, 0);
    out.push_back({.node = node, .alloc = std::move(t)});
  }
  if (out.empty()) {  // recorded before gangs: the totals
    out.push_back(
        {.node = 0,
         .alloc = {.cpu_millis = a.cpu_millis, .memory_bytes = a.memory_bytes, .gpus = a.gpus}});
  }
  return out;
}

Allocation AllocationOf(const std::vector<NodeTask>& tasks) {
  Allocation a;
  for (const NodeTask& t : tasks) {
    a.cpu_millis += t.alloc.cpu_millis;
    a.memory_bytes += t.alloc.memory_bytes;
    a.gpus.insert(a.gpus.end(), t.alloc.gpus.begin(), t.alloc.gpus.end());
    a.tasks.push_back(t.alloc);
    a.tasks.back().node = t.node;
  }
  std::sort(a.gpus.begin(), a.gpus.end());
  return a;
}

// What an attempt holds, for its tenant's quota: each task's GPUs counted by the type of its node.
TenantUsage UsageOnNodes(const Allocation& a, const std::vector<NodeCapacity>& nodes) {
  auto node = [&](int i) -> const NodeCapacity& {
    return nodes[std::clamp<size_t>(i, 0, nodes.size() - 1)];
  };
  if (a.tasks.empty()) return UsageOf(a, node(0));  // recorded before gangs
  TenantUsage u;
  for (const TaskAllocation& t : a.tasks) {
    u += UsageOf({.cpu_millis = t.cpu_millis, .memory_bytes = t.memory_bytes, .gpus = t.gpus},
                 node(t.node));
  }
  u.running_jobs = 1;
  return u;
}

// user or infrastructure: whose fault an attempt's failure was. A process killed by SIGKILL or
// SIGTERM that dlab did not send was killed by the machine or an operator (or the kernel's OOM
// killer outside the job's own limit); a non-zero exit or another signal is the program's.
std::string FailureClass(const AttemptStatus& s) {
  if (s.end_reason == "lost" || s.end_reason == "oom_killed") return "infrastructure";
  if (s.end_reason == "launch_failed") {
    return s.message.starts_with("workdir") ? "user" : "infrastructure";
  }
  if (s.end_reason == "exited" && (s.signal == "SIGKILL" || s.signal == "SIGTERM")) {
    return "infrastructure";
  }
  return "user";
}

// Why an attempt ended, for people.
std::string EndReason(const AttemptStatus& s, const JobSpec& spec) {
  if (s.end_reason == "cancelled") return "cancelled by user";
  if (s.end_reason == "max_runtime") {
    return absl::StrCat("max_runtime ", absl::FormatDuration(spec.max_runtime), " exceeded");
  }
  if (s.end_reason == "oom_killed") {
    return absl::StrCat("out of memory: killed at the ",
                        FormatMemoryBytes(spec.resources.memory_bytes), " limit");
  }
  if (s.end_reason == "exec_failed") return absl::StrCat("cannot start command: ", s.message);
  if (!s.signal.empty()) return absl::StrCat("killed by ", s.signal);
  return absl::StrCat("exited with code ", s.exit_code.value_or(-1));
}

// How an attempt that dlab stopped ended (the backend calls that "cancelled"), for a preemption:
// no user cancelled it.
std::string StoppedHow(const AttemptStatus& s) {
  if (s.signal == "SIGKILL") return "killed at the end of its grace period";
  if (!s.signal.empty()) return absl::StrCat("stopped by ", s.signal);
  if (!s.exit_code) return "stopped";
  return absl::StrCat("exited with code ", *s.exit_code, " after SIGTERM");
}

}  // namespace

JobController::JobController(ControllerOptions options, Store* store, SnapshotStore* snapshots,
                             Backend* backend, ControllerObserver observer)
    : options_(std::move(options)),
      store_(store),
      snapshots_(snapshots),
      backend_(backend),
      observer_(std::move(observer)),
      placement_nodes_([this] {
        std::vector<NodeCapacity> all = options_.nodes;
        all.insert(all.end(), options_.queue_ahead_nodes.begin(), options_.queue_ahead_nodes.end());
        return all;
      }()),
      ports_(std::make_unique<PortPool>(options_.first_port, options_.last_port,
                                        options_.port_is_free, options_.machine_wide_ports)) {
  DLAB_CHECK(!options_.nodes.empty());
  auto scheduler = NewScheduler(options_.scheduler, placement_nodes_);
  DLAB_CHECK(scheduler.ok());  // the configuration was validated when it was read
  scheduler_ = *std::move(scheduler);
}

JobController::~JobController() { Stop(); }

absl::Status JobController::Start(const std::string& api_url) {
  api_url_ = api_url;
  backend_->SetListener([this](const std::string& dir) {
    std::lock_guard lock(mu_);
    changed_dirs_.insert(dir);
    cv_.notify_one();
  });
  if (auto s = Recover(); !s.ok()) return s;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void JobController::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

std::string JobController::JobDir(int64_t job_id) const {
  return absl::StrCat(options_.data_dir, "/jobs/", job_id);
}

std::string JobController::AttemptDir(int64_t job_id, int attempt) const {
  return absl::StrCat(JobDir(job_id), "/attempts/", attempt);
}

void JobController::Wake() {
  std::lock_guard lock(mu_);
  dirty_ = true;
  cv_.notify_one();
}

void JobController::Enqueue(const JobRecord& job) {
  std::lock_guard lock(mu_);
  scheduler_->Enqueue(RequestOf(job), Seconds(absl::Now()));
  ++generation_;
  queued_[job.id] = job.tenant_id;
  dirty_ = true;
  cv_.notify_one();
}

absl::StatusOr<CreateJobResult> JobController::Submit(const JobSpec& spec,
                                                      const std::string& snapshot,
                                                      const std::string& idempotency_key,
                                                      int64_t tenant_id, const std::string& owner) {
  if (auto s = CheckCanEverRun(TaskResources(spec), options_.nodes); !s.ok()) return s;
  if (auto s = backend_->Validate(spec); !s.ok()) return s;
  if (!snapshot.empty()) {
    if (auto s = snapshots_->Stat(snapshot); !s.ok()) return s.status();
  }
  // Keys of different tenants never meet.
  std::string key =
      idempotency_key.empty() ? "" : absl::StrCat("t", tenant_id, ":", idempotency_key);
  if (!key.empty()) {  // a retry gets its job back, whatever the quota says now
    auto existing = store_->FindJobByIdempotencyKey(key);
    if (existing.ok()) return CreateJobResult{*std::move(existing), false};
    if (!absl::IsNotFound(existing.status())) return existing.status();
  }
  std::optional<TenantQuota> quota;
  if (options_.tenant_quotas) {
    auto quotas = options_.tenant_quotas();
    if (auto q = quotas.find(tenant_id); q != quotas.end()) quota = q->second;
  }
  if (quota) {
    if (auto s = CheckQuotaCanEverAdmit(TaskResources(spec), *quota); !s.ok()) return s;
  }
  std::lock_guard submit_lock(submit_mu_);  // the count and the insert, as one
  if (quota && quota->queued_jobs) {
    auto queued = store_->CountJobs(tenant_id, JobState::kQueued);
    if (!queued.ok()) return queued.status();
    if (*queued >= *quota->queued_jobs) {
      return absl::ResourceExhaustedError(
          absl::StrCat("tenant quota: queued_jobs: ", *queued, " of ", *quota->queued_jobs,
                       " already waiting; submit again when some have started"));
    }
  }
  auto result = store_->CreateJob({.tenant_id = tenant_id,
                                   .owner = owner,
                                   .spec = spec,
                                   .snapshot = snapshot,
                                   .idempotency_key = key,
                                   .submit_time = absl::Now()});
  if (!result.ok()) return result.status();
  if (result->created) Enqueue(result->job);
  return result;
}

TenantUsage JobController::Usage(int64_t tenant_id) {
  TenantUsage u;
  std::lock_guard lock(mu_);
  for (const auto& [id, a] : active_) {
    if (a.tenant_id != tenant_id) continue;
    u += UsageOnNodes(a.allocation, placement_nodes_);
  }
  for (const auto& [id, tenant] : queued_) u.queued_jobs += tenant == tenant_id;
  return u;
}

void JobController::Reschedule() { Wake(); }

absl::StatusOr<JobRecord> JobController::Cancel(int64_t job_id) {
  auto job = store_->GetJob(job_id);
  if (!job.ok()) return job.status();
  if (IsTerminal(job->state)) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " already ended (",
                                                      std::string(JobStateName(job->state)), ")"));
  }
  if (auto s = store_->SetCancelRequested(job_id); !s.ok()) return s;
  if (job->state == JobState::kQueued) {
    auto s = store_->Transition({.job_id = job_id,
                                 .from = JobState::kQueued,
                                 .to = JobState::kCancelled,
                                 .reason = "cancelled by user before it started",
                                 .time = absl::Now()});
    if (s.ok()) {
      std::lock_guard lock(mu_);
      scheduler_->Remove(job_id, Seconds(absl::Now()), /*ended=*/false);  // never launched
      ++generation_;
      queued_.erase(job_id);
      dirty_ = true;
      cv_.notify_one();
      return store_->GetJob(job_id);
    }
    // Lost the race with the scheduler: it is starting now; cancel it as a running job.
  }
  if (job->state == JobState::kRestarting) {
    auto s = store_->Transition({.job_id = job_id,
                                 .from = JobState::kRestarting,
                                 .to = JobState::kCancelled,
                                 .reason = "cancelled by user while waiting to restart",
                                 .time = absl::Now()});
    if (s.ok()) {
      std::lock_guard lock(mu_);
      restart_at_.erase(job_id);
      return store_->GetJob(job_id);
    }
  }
  std::string dir;
  {
    std::lock_guard lock(mu_);
    if (auto it = active_.find(job_id); it != active_.end()) dir = it->second.dir;
  }
  if (!dir.empty()) {
    if (auto s = backend_->Cancel(dir); !s.ok())
      spdlog::warn("cancel job {}: {}", job_id, s.ToString());
  }
  return store_->GetJob(job_id);
}

absl::StatusOr<std::string> JobController::LogPath(int64_t job_id, int attempt, int task) {
  auto job = store_->GetJob(job_id);
  if (!job.ok()) return job.status();
  int tasks = TaskCount(job->spec);
  if (task >= tasks) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " has no task ", task, " (it has ",
                                            tasks, ", numbered from 0)"));
  }
  if (attempt == 0) attempt = job->attempts;
  if (attempt == 0) return std::string();
  if (attempt < 0 || attempt > job->attempts) {
    return absl::NotFoundError(
        absl::StrCat("job ", job_id, " has no attempt ", attempt, " (it has ", job->attempts, ")"));
  }
  if (task < 0 && tasks > 1) return absl::StrCat(AttemptDir(job_id, attempt), "/attempt.log");
  return absl::StrCat(AttemptDir(job_id, attempt), "/task-", std::max(task, 0), ".log");
}

std::string JobController::OutputDir(int64_t job_id) const {
  return absl::StrCat(JobDir(job_id), "/output");
}

std::vector<JobController::RunningAttempt> JobController::Running() {
  std::lock_guard lock(mu_);
  std::vector<RunningAttempt> out;
  for (const auto& [id, a] : active_) {
    out.push_back({.job_id = id,
                   .attempt = a.attempt,
                   .output_dir = OutputDir(id),
                   .gpus = a.allocation.gpus});
  }
  return out;
}

void JobController::RequeueDue() {
  std::vector<int64_t> due;
  {
    std::lock_guard lock(mu_);
    absl::Time now = absl::Now();
    for (auto it = restart_at_.begin(); it != restart_at_.end();) {
      if (it->second <= now) {
        due.push_back(it->first);
        it = restart_at_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (int64_t id : due) {
    auto r = store_->Transition({.job_id = id,
                                 .from = JobState::kRestarting,
                                 .to = JobState::kQueued,
                                 .reason = "queued for a new attempt",
                                 .time = absl::Now()});
    if (!r.ok()) {
      spdlog::warn("requeue job {}: {}", id, r.ToString());
      continue;
    }
    if (auto again = store_->GetJob(id); again.ok()) Enqueue(*again);
  }
}

void JobController::Loop() {
  absl::Time next_reconcile = absl::Now() + options_.reconcile_interval;
  while (true) {
    std::set<std::string> changed;
    bool reconcile = false;
    {
      std::unique_lock lock(mu_);
      absl::Duration wait = options_.reconcile_interval;
      for (const auto& [id, at] : restart_at_) wait = std::min(wait, at - absl::Now());
      auto restart_due = [&] {
        for (const auto& [id, at] : restart_at_) {
          if (at <= absl::Now()) return true;
        }
        return false;
      };
      cv_.wait_for(lock, absl::ToChronoNanoseconds(std::max(wait, absl::ZeroDuration())),
                   [&] { return stopping_ || dirty_ || !changed_dirs_.empty() || restart_due(); });
      if (stopping_) return;
      changed.swap(changed_dirs_);
      reconcile = absl::Now() >= next_reconcile;
    }
    for (const std::string& dir : changed) Refresh(dir);
    RequeueDue();
    if (reconcile) {
      next_reconcile = absl::Now() + options_.reconcile_interval;
      std::vector<Active> all;
      {
        std::lock_guard lock(mu_);
        for (const auto& [id, a] : active_) all.push_back(a);
        dirty_ = true;  // resources or reasons may have changed
      }
      for (const Active& a : all) {
        if (auto job = store_->GetJob(a.job_id); job.ok() && job->cancel_requested) {
          backend_->Cancel(a.dir).IgnoreError();  // idempotent; covers a cancel sent too early
        }
        RefreshActive(a);
      }
    }
    ScheduleOnce();
  }
}

void JobController::ScheduleOnce() {
  {
    std::lock_guard lock(mu_);
    if (!dirty_) return;
    dirty_ = false;
  }
  std::map<int64_t, TenantQuota> quotas;
  if (options_.tenant_quotas) quotas = options_.tenant_quotas();
  std::map<int64_t, double> weights;
  if (options_.tenant_weights) weights = options_.tenant_weights();
  CycleResult decision;
  {
    std::lock_guard lock(mu_);
    scheduler_->SetQuotas(std::move(quotas));
    scheduler_->SetTenantWeights(std::move(weights));
    decision = scheduler_->Schedule(Seconds(absl::Now()), /*explain=*/true);
    if (!decision.start.empty() || !decision.preempt.empty()) ++generation_;
    // A started job stays in queued_ until Launch moves it to active_ (or it is dropped), so
    // that Usage counts it all along, as queued or as running.
  }
  std::map<int64_t, std::string> reasons;
  std::map<int64_t, std::string> changed;
  for (const WaitReason& w : decision.wait) {
    auto last = waiting_reason_.find(w.job_id);
    if (last == waiting_reason_.end() || last->second != w.reason) changed[w.job_id] = w.reason;
    reasons[w.job_id] = w.reason;
  }
  if (auto s = store_->SetReasons(changed); !s.ok()) spdlog::warn("{}", s.ToString());
  waiting_reason_ = std::move(reasons);
  for (const PreemptDecision& p : decision.preempt) Preempt(p);
  for (const StartDecision& p : decision.start) {
    auto job = store_->GetJob(p.job_id);
    if (!job.ok()) {
      spdlog::error("schedule job {}: {}", p.job_id, job.status().ToString());
      if (!absl::IsNotFound(job.status())) {
        Unstart(p.job_id);  // still QUEUED: try again later
        continue;
      }
    }
    if (!job.ok() || job->state != JobState::kQueued || job->cancel_requested) {
      std::lock_guard lock(mu_);
      scheduler_->Remove(p.job_id, Seconds(absl::Now()), /*ended=*/false);
      ++generation_;
      queued_.erase(p.job_id);
      dirty_ = true;
    }
    if (!job.ok() || job->state != JobState::kQueued) continue;  // cancelled meanwhile
    if (job->cancel_requested) {  // cancel lost the race with a restart: end it here
      store_
          ->Transition({.job_id = job->id,
                        .from = JobState::kQueued,
                        .to = JobState::kCancelled,
                        .reason = "cancelled by user",
                        .time = absl::Now()})
          .IgnoreError();
      continue;
    }
    Launch(*job, AllocationOf(p.tasks));
  }
}

void JobController::Preempt(const PreemptDecision& p) {
  Active active;
  {
    std::lock_guard lock(mu_);
    auto it = active_.find(p.job_id);
    if (it == active_.end()) return;  // ended meanwhile; Finish told the scheduler
    // Its launch failed, to be recorded by the next reconcile, which frees its room.
    if (it->second.launch_failure) return;
    active = it->second;
    it->second.state = JobState::kPreempted;
  }
  if (active.state == JobState::kPreempted) {
    // Being stopped already (dlabd restarted meanwhile): the job that chose it again waits for
    // the same stop; the store keeps the first reason.
    backend_->Cancel(active.dir).IgnoreError();
    return;
  }
  auto s =
      store_->Transition({.job_id = p.job_id,
                          .from = active.state,
                          .to = JobState::kPreempted,
                          .reason = absl::StrCat(p.reason, "; stopping it (SIGTERM, SIGKILL after ",
                                                 absl::FormatDuration(options_.kill_grace),
                                                 ") to requeue it from its latest checkpoint"),
                          .time = absl::Now()});
  if (!s.ok()) {  // it runs on; a later cycle may choose it again
    spdlog::warn("preempt job {}: {}", p.job_id, s.ToString());
    std::lock_guard lock(mu_);
    if (auto it = active_.find(p.job_id); it != active_.end()) it->second.state = active.state;
    scheduler_->Unpreempt(p.job_id);
    ++generation_;
    return;
  }
  spdlog::info("job {}: {}", p.job_id, p.reason);
  if (auto c = backend_->Cancel(active.dir); !c.ok()) {
    spdlog::warn("preempt job {}: {}", p.job_id, c.ToString());
  }
}

bool JobController::Unstart(int64_t job_id) {
  std::lock_guard lock(mu_);
  if (!scheduler_->Unstart(job_id)) return false;  // cancelled meanwhile: Cancel removed it
  ++generation_;
  return true;
}

void JobController::Launch(const JobRecord& job, const Allocation& scheduled) {
  std::vector<TaskInfo> tasks = ExpandTasks(job.spec);
  Allocation allocation = scheduled;
  DLAB_CHECK(allocation.tasks.size() == tasks.size());  // the scheduler places every task
  bool roles = !tasks[0].role.empty();
  {
    auto ports = ports_->Take(1 + (roles ? static_cast<int>(tasks.size()) : 0));
    if (!ports.ok()) {
      // Leave it queued: ports come back as attempts end.
      spdlog::warn("job {}: {}", job.id, ports.status().ToString());
      if (Unstart(job.id)) {
        store_
            ->SetReasons({{job.id, absl::StrCat("waiting for ports: ", ports.status().message())}})
            .IgnoreError();
      }
      return;
    }
    allocation.ports = *std::move(ports);
  }
  std::optional<CheckpointRef> resume;
  if (options_.latest_checkpoint) {
    if (auto saved = options_.latest_checkpoint(job.id)) resume = std::move(saved->ref);
    std::error_code ec;
    if (resume && !fs::exists(resume->path, ec)) {
      spdlog::warn("job {}: latest checkpoint {} is gone; starting without it", job.id,
                   resume->path);
      resume.reset();
    }
  }
  Active active{.job_id = job.id,
                .attempt = job.attempts + 1,
                .dir = AttemptDir(job.id, job.attempts + 1),
                .allocation = allocation,
                .state = JobState::kStarting,
                .submit_time = job.submit_time,
                .tenant_id = job.tenant_id};
  AttemptRecord attempt{.job_id = job.id,
                        .number = active.attempt,
                        .state = JobState::kStarting,
                        .allocation = allocation,
                        .dir = active.dir,
                        .create_time = absl::Now(),
                        .resumed_from = resume};
  std::string reason = absl::StrCat("scheduled: ", DescribeAllocation(allocation));
  if (tasks.size() > 1) absl::StrAppend(&reason, " for ", tasks.size(), " tasks");
  if (resume) absl::StrAppend(&reason, "; resuming from the checkpoint of step ", resume->step);
  auto s = store_->Transition({.job_id = job.id,
                               .from = JobState::kQueued,
                               .to = JobState::kStarting,
                               .reason = reason,
                               .time = attempt.create_time,
                               .new_attempt = attempt});
  if (!s.ok()) {  // still QUEUED in the store: it waits to be scheduled again
    spdlog::warn("launch job {}: {}", job.id, s.ToString());
    ports_->Release(allocation.ports);
    Unstart(job.id);
    return;
  }
  {
    std::lock_guard lock(mu_);
    queued_.erase(job.id);
    active_[job.id] = active;
    dir_to_job_[active.dir] = job.id;
  }

  std::error_code ec;
  std::string code_dir = absl::StrCat(active.dir, "/code");
  std::string checkpoint_dir = absl::StrCat(JobDir(job.id), "/checkpoints");
  std::string output_dir = OutputDir(job.id);
  for (const std::string& d : {code_dir, checkpoint_dir, output_dir}) fs::create_directories(d, ec);
  if (ec)
    return FailLaunch(active,
                      absl::StrCat("cannot create the attempt's directories: ", ec.message()));
  if (!job.snapshot.empty()) {
    if (auto x = snapshots_->Extract(job.snapshot, code_dir); !x.ok()) {
      return FailLaunch(active, absl::StrCat("cannot unpack the code snapshot: ", x.message()));
    }
  }
  std::string workdir = fs::weakly_canonical(fs::path(code_dir) / job.spec.workdir).string();
  if (workdir != code_dir && !workdir.starts_with(code_dir + "/")) {
    return FailLaunch(
        active, absl::StrCat("workdir '", job.spec.workdir, "' leads outside the code snapshot"));
  }
  if (!fs::is_directory(workdir)) {
    return FailLaunch(active, absl::StrCat("workdir '", job.spec.workdir,
                                           "' is not a directory in the code snapshot"));
  }
  // The local backend runs every task here, on one node; the Slurm backend makes the hosts
  // again from where Slurm placed the tasks (LaunchRequest::placement).
  GangPlacement placement{.hosts = std::vector<std::string>(tasks.size(), "127.0.0.1"),
                          .master_port = allocation.ports[0],
                          .hostfile = absl::StrCat(active.dir, "/hostfile")};
  if (roles) placement.task_ports.assign(allocation.ports.begin() + 1, allocation.ports.end());
  for (const TaskAllocation& t : allocation.tasks) placement.gpus.push_back(t.gpus);
  if (auto w =
          WriteFileAtomically(placement.hostfile, HostfileText(placement.hosts), {.sync = false});
      !w.ok()) {
    return FailLaunch(active, absl::StrCat("cannot write the hostfile: ", w.message()));
  }
  std::vector<std::map<std::string, std::string>> task_env = TaskEnvironments(tasks, placement);
  LaunchRequest req{
      .job_id = job.id,
      .attempt = active.attempt,
      .workdir = workdir,
      .env = job.spec.env,
      .attempt_dir = active.dir,
      .log_path = absl::StrCat(active.dir, tasks.size() > 1 ? "/attempt.log" : "/task-0.log"),
      .max_runtime = job.spec.max_runtime,
      .kill_grace = options_.kill_grace};
  std::set<std::string> gpu_types;
  for (const TaskAllocation& t : allocation.tasks) {
    if (t.node < 0 || static_cast<size_t>(t.node) >= placement_nodes_.size()) continue;
    for (int g : t.gpus) {
      for (const GpuSlot& slot : placement_nodes_[t.node].gpus) {
        if (slot.index == g) gpu_types.insert(slot.type);
      }
    }
  }
  if (gpu_types.size() == 1) req.gpu_type = *gpu_types.begin();
  req.acceptable_gpu_types = job.spec.resources.gpu_type;
  req.placement = placement;
  req.tenant_id = job.tenant_id;
  req.snapshot = job.snapshot;
  req.image = job.spec.image;
  for (const TaskInfo& t : tasks) {
    req.tasks.push_back({.rank = t.rank,
                         .argv = t.command,
                         .env = std::move(task_env[t.rank]),
                         .log_path = absl::StrCat(active.dir, "/task-", t.rank, ".log"),
                         .allocation = allocation.tasks[t.rank],
                         .auxiliary = t.role == "ps",
                         .role = t.role,
                         .role_index = t.role_index});
  }
  req.env["DLAB_JOB_ID"] = absl::StrCat(job.id);
  req.env["DLAB_ATTEMPT"] = absl::StrCat(active.attempt);
  req.env["DLAB_TRIAL_ID"] = "";
  req.env["DLAB_HPARAMS"] = "{}";
  req.env["DLAB_CHECKPOINT_DIR"] = checkpoint_dir;
  req.env["DLAB_RESUME_FROM"] = resume ? resume->path : "";
  req.env["DLAB_OUTPUT_DIR"] = output_dir;
  req.env["DLAB_API_URL"] = api_url_;
  req.env["DLAB_TOKEN"] = options_.job_token ? options_.job_token(job.id) : "";
  if (!options_.python_sdk_dir.empty()) {  // `import dlab` works in every job
    auto own = job.spec.env.find("PYTHONPATH");
    req.env["PYTHONPATH"] = own == job.spec.env.end()
                                ? options_.python_sdk_dir
                                : absl::StrCat(options_.python_sdk_dir, ":", own->second);
  }
  if (auto x = backend_->Launch(req); !x.ok()) {
    return FailLaunch(active, absl::StrCat("cannot start the supervisor: ", x.message()));
  }
  // A cancel that arrived while the attempt was being prepared found nothing to signal.
  if (auto now = store_->GetJob(job.id); now.ok() && now->cancel_requested) {
    backend_->Cancel(active.dir).IgnoreError();
  }
}

void JobController::FailLaunch(const Active& active, const std::string& reason) {
  spdlog::warn("job {} attempt {}: {}", active.job_id, active.attempt, reason);
  AttemptStatus failed{.phase = AttemptPhase::kExited,
                       .end_reason = "launch_failed",
                       .message = reason,
                       .end_time = absl::Now()};
  {
    // Kept in active_ until Finish records it (a refused write is retried by the reconcile).
    std::lock_guard lock(mu_);
    if (auto it = active_.find(active.job_id); it != active_.end()) {
      it->second.launch_failure = failed;
    }
  }
  Finish(active, failed);
}

void JobController::Refresh(const std::string& attempt_dir) {
  std::optional<Active> active;
  {
    std::lock_guard lock(mu_);
    auto it = dir_to_job_.find(attempt_dir);
    if (it != dir_to_job_.end()) {
      auto a = active_.find(it->second);
      if (a != active_.end() && a->second.dir == attempt_dir) active = a->second;
    }
  }
  if (active) RefreshActive(*active);
}

void JobController::RefreshActive(Active active) {
  if (active.launch_failure) return Finish(active, *active.launch_failure);
  auto status = backend_->Inspect(active.dir);
  if (!status.ok()) {
    if (absl::IsNotFound(status.status()) && active.state == JobState::kStarting)
      return;  // launching
    spdlog::warn("inspect {}: {}", active.dir, status.status().ToString());
    return;
  }
  bool ran = status->start_time.has_value();
  if (active.state == JobState::kStarting && ran) {
    auto s =
        store_->Transition({.job_id = active.job_id,
                            .from = JobState::kStarting,
                            .to = JobState::kRunning,
                            .reason = absl::StrCat("started attempt ", active.attempt),
                            .time = *status->start_time,
                            .attempt_update = AttemptUpdate{.number = active.attempt,
                                                            .state = JobState::kRunning,
                                                            .start_time = status->start_time,
                                                            .limit_notes = status->limit_notes}});
    if (!s.ok()) {
      spdlog::warn("job {}: {}", active.job_id, s.ToString());
      return;
    }
    active.state = JobState::kRunning;
    {
      std::lock_guard lock(mu_);
      if (auto it = active_.find(active.job_id); it != active_.end())
        it->second.state = JobState::kRunning;
    }
    if (observer_.on_started) observer_.on_started(*status->start_time - active.submit_time);
  }
  if (status->phase == AttemptPhase::kExited) {
    Finish(active, *status);
  } else if (status->phase == AttemptPhase::kLost) {
    backend_->Cancel(active.dir).IgnoreError();  // kills what is left of it, if anything
    AttemptStatus lost = *status;
    lost.end_reason = "lost";
    lost.end_time = absl::Now();
    Finish(active, lost);
  }
}

void JobController::Finish(const Active& active, const AttemptStatus& status) {
  auto job = store_->GetJob(active.job_id);
  if (!job.ok()) {
    spdlog::error("finish job {}: {}", active.job_id, job.status().ToString());
    return;
  }
  std::string reason;
  if (status.end_reason == "launch_failed") {
    reason = status.message;
  } else if (status.end_reason == "lost") {
    reason = status.message.empty() ? "the attempt's supervisor is gone and recorded no exit status"
                                    : status.message;  // the backend's word, e.g. Slurm's NODE_FAIL
  } else if (status.failed_rank >= 0 && status.tasks.size() > 1) {
    reason = status.message;  // names the task that failed
  } else {
    reason = EndReason(status, job->spec);
  }
  JobState attempt_state;
  JobState to;
  bool succeeded = status.end_reason == "exited" && status.exit_code == 0;
  bool cancelled = status.end_reason == "cancelled" || (job->cancel_requested && !succeeded);
  // However a preempted attempt ended (a clean exit after its checkpoint, or SIGKILL after the
  // grace period), the job waits in the queue again; it does not count as a failure.
  bool preempted = job->state == JobState::kPreempted && !job->cancel_requested;
  if (preempted) {
    attempt_state = JobState::kPreempted;
    to = JobState::kQueued;
    std::string cause = job->reason.substr(0, job->reason.find("; stopping"));
    if (status.end_reason == "cancelled") reason = StoppedHow(status);
    reason = absl::StrCat(cause, "; ", reason, "; requeued to resume from its latest checkpoint");
  } else if (cancelled) {
    attempt_state = to = JobState::kCancelled;
    reason = "cancelled by user";
  } else if (succeeded) {
    attempt_state = to = JobState::kSucceeded;
  } else {
    attempt_state = to = JobState::kFailed;
  }
  std::string failure = to == JobState::kFailed ? FailureClass(status) : "";
  // Restart failures the job may recover from; not a command that cannot start, ran too long
  // or could not be prepared. User errors count against max_restarts; infrastructure failures
  // have their own bound.
  int user_failures = 0;
  int infra_failures = 0;
  int consecutive = 1;
  for (const auto& a : job->attempt_list) {
    if (a.number == active.attempt) continue;
    user_failures += a.failure == "user" ? 1 : 0;
    infra_failures += a.failure == "infrastructure" ? 1 : 0;
    // Like Kubernetes' crash-loop backoff: an attempt that ran 10 minutes resets the count.
    bool ran_long = a.start_time && a.end_time && *a.end_time - *a.start_time >= absl::Minutes(10);
    consecutive = a.state == JobState::kFailed && !ran_long ? consecutive + 1 : 1;
  }
  if (status.start_time && status.end_time &&
      *status.end_time - *status.start_time >= absl::Minutes(10)) {
    consecutive = 1;
  }
  bool restartable = to == JobState::kFailed && status.end_reason != "exec_failed" &&
                     status.end_reason != "max_runtime" && status.end_reason != "launch_failed";
  bool counted = failure == "user";
  bool restart = restartable && (counted ? user_failures < job->spec.max_restarts
                                         : infra_failures < job->spec.max_infra_restarts);
  absl::Duration delay = absl::ZeroDuration();
  if (restart) {
    delay = std::min(job->spec.restart_backoff * (1 << std::min(consecutive - 1, 20)),
                     absl::Minutes(5));
    to = JobState::kRestarting;
    if (counted) {
      reason = absl::StrCat(reason, "; restarting (restart ", user_failures + 1, " of ",
                            job->spec.max_restarts, ")");
    } else {
      reason =
          absl::StrCat(reason, "; infrastructure failure, restarting without counting it (",
                       infra_failures + 1, " of ", job->spec.max_infra_restarts, " such retries)");
    }
    if (delay > absl::ZeroDuration()) {
      absl::StrAppend(&reason, " in ", absl::FormatDuration(delay));
    }
  } else if (restartable && to == JobState::kFailed && (!counted || job->spec.max_restarts > 0)) {
    absl::StrAppend(&reason, counted ? absl::StrCat("; no restarts left (max_restarts ",
                                                    job->spec.max_restarts, ")")
                                     : absl::StrCat("; infrastructure retries exhausted (",
                                                    job->spec.max_infra_restarts, ")"));
  }
  std::vector<TaskInfo> infos = ExpandTasks(job->spec);
  std::vector<TaskEnd> ends = status.tasks;
  for (TaskEnd& e : ends) {
    if (e.rank >= 0 && e.rank < static_cast<int>(infos.size())) {
      e.role = infos[e.rank].role;
      e.role_index = infos[e.rank].role_index;
    }
  }
  absl::Time end = status.end_time.value_or(absl::Now());
  AttemptUpdate attempt_update{.number = active.attempt,
                               .state = attempt_state,
                               .reason = reason,
                               .end_time = end,
                               .exit_code = status.exit_code,
                               .failure = failure,
                               .restart_counted = restart && counted,
                               .tasks = ends};
  // Keep the notes recorded at start unless the supervisor reported some (it may not have).
  if (!status.limit_notes.empty()) attempt_update.limit_notes = status.limit_notes;
  auto s = store_->Transition({.job_id = active.job_id,
                               .from = job->state,
                               .to = to,
                               .reason = reason,
                               .time = end,
                               .exit_code = status.exit_code,
                               .attempt_update = attempt_update});
  if (!s.ok()) {
    spdlog::warn("finish job {}: {}", active.job_id, s.ToString());
    return;
  }
  {
    std::lock_guard lock(mu_);
    active_.erase(active.job_id);
    dir_to_job_.erase(active.dir);
    dirty_ = true;
    ++generation_;
    if (preempted) {
      scheduler_->Requeue(active.job_id, Seconds(end));
      queued_[active.job_id] = job->tenant_id;
    } else {
      // An attempt that never started (it could not be launched) says nothing of the job's size.
      scheduler_->Remove(active.job_id, Seconds(end),
                         /*ended=*/!restart && status.start_time.has_value());
    }
    if (restart) {
      restart_at_[active.job_id] = absl::Now() + delay;
      cv_.notify_one();
    }
  }
  ports_->Release(active.allocation.ports);
  if (restart && delay == absl::ZeroDuration()) RequeueDue();
}

void JobController::Checkpointed(int64_t job_id) {
  std::lock_guard lock(mu_);
  scheduler_->Checkpointed(job_id, Seconds(absl::Now()));
  ++generation_;  // the victims the forecast expects may change
}

std::shared_ptr<const JobController::QueueForecast> JobController::Queue() {
  // The forecast behind the estimates replays cycles ahead (seconds in all with a queue of
  // thousands, hence its budget), so it runs on a copy, outside the lock: scheduling goes on
  // meanwhile. One forecast at a time: viewers asking together (every console open on the
  // Cluster page asks every 5 s) share it, and it serves until a job enters, starts, stops or
  // leaves, for at most kQueueForecastReuse.
  constexpr double kQueueForecastBudgetS = 0.5;
  constexpr absl::Duration kQueueForecastReuse = absl::Seconds(5);
  std::lock_guard one_at_a_time(forecast_mu_);
  std::unique_ptr<Scheduler> copy;
  uint64_t generation = 0;
  auto forecast = std::make_shared<QueueForecast>();
  {
    std::lock_guard lock(mu_);
    forecast->time = absl::Now();
    generation = generation_;
    if (forecast_ && forecast_generation_ == generation &&
        forecast->time - forecast_->time < kQueueForecastReuse) {
      return forecast_;
    }
    copy = scheduler_->Clone();
  }
  for (const QueueEntry& e : copy->Queue(Seconds(forecast->time), kQueueForecastBudgetS)) {
    QueuedJobView v{.job_id = e.job_id, .tenant_id = e.tenant_id, .reason = e.reason};
    if (e.estimated_start_s) {
      v.estimated_start = absl::UnixEpoch() + absl::Seconds(*e.estimated_start_s);
    }
    forecast->jobs.push_back(std::move(v));
  }
  forecast_ = forecast;
  forecast_generation_ = generation;
  return forecast;
}

absl::Status JobController::Recover() {
  if (scheduler_->LearnsFromEndedJobs()) {
    // The sizes of jobs that ended before this start (the newest kSizeHistory), which the
    // policy orders by; the scheduler records the ones that end from now on by itself.
    constexpr int kSizeHistory = 5000;
    JobFilter filter{.states = {JobState::kSucceeded, JobState::kFailed, JobState::kCancelled},
                     .limit = 500};
    for (int seen = 0; seen < kSizeHistory;) {
      auto ended = store_->ListJobs(filter);
      if (!ended.ok()) return ended.status();
      std::lock_guard lock(mu_);
      for (const JobRecord& job : *ended) {
        JobRequest r = RequestOf(job);
        if (r.attained_gpu_s > 0) {
          scheduler_->RecordEnded(job.tenant_id, GpusOf(r.tasks), r.attained_gpu_s);
        }
      }
      seen += static_cast<int>(ended->size());
      if (static_cast<int>(ended->size()) < filter.limit) break;
      filter.before_id = ended->back().id;
    }
  }
  auto jobs = store_->ActiveJobs();
  if (!jobs.ok()) return jobs.status();
  int reattached = 0;
  std::vector<Active> to_refresh;
  for (JobRecord& job : *jobs) {
    if (job.state == JobState::kRestarting) {
      auto s = store_->Transition({.job_id = job.id,
                                   .from = JobState::kRestarting,
                                   .to = JobState::kQueued,
                                   .reason = "queued for a new attempt",
                                   .time = absl::Now()});
      if (!s.ok()) return s;
      job.state = JobState::kQueued;
    }
    if (job.state == JobState::kQueued) {
      Enqueue(job);
      continue;
    }
    // STARTING or RUNNING: find its attempt's supervisor.
    if (job.attempt_list.empty()) continue;
    const AttemptRecord& a = job.attempt_list.back();
    Active active{.job_id = job.id,
                  .attempt = a.number,
                  .dir = a.dir,
                  .allocation = a.allocation,
                  .state = job.state,
                  .submit_time = job.submit_time,
                  .tenant_id = job.tenant_id};
    auto status = backend_->Inspect(a.dir);
    bool never_started = status.ok() && status->phase == AttemptPhase::kLost && !status->start_time;
    if ((!status.ok() && absl::IsNotFound(status.status())) || never_started) {
      // dlabd stopped between recording the attempt and launching it: run it again.
      auto s = store_->Transition({.job_id = job.id,
                                   .from = job.state,
                                   .to = JobState::kQueued,
                                   .reason = "dlabd restarted before the attempt was launched",
                                   .time = absl::Now(),
                                   .attempt_update = AttemptUpdate{.number = a.number,
                                                                   .state = JobState::kCancelled,
                                                                   .reason = "never launched",
                                                                   .end_time = absl::Now()}});
      if (!s.ok()) return s;
      if (auto again = store_->GetJob(job.id); again.ok()) Enqueue(*again);
      continue;
    }
    {
      std::lock_guard lock(mu_);
      active_[job.id] = active;
      dir_to_job_[a.dir] = job.id;
      scheduler_->AddRunning(RequestOf(job), NodeTasksOf(a.allocation),
                             Seconds(a.start_time.value_or(a.create_time)));
      ++generation_;
    }
    // Were it preempted, it would lose its work since its latest checkpoint (the scheduler
    // ignores one older than the attempt). One that dlabd was preempting has lost it already:
    // it costs nothing to choose again, so the job it was stopped for waits for its room
    // rather than preempting another.
    std::optional<absl::Time> saved;
    if (job.state == JobState::kPreempted) {
      saved = absl::Now();
    } else if (options_.latest_checkpoint) {
      if (auto c = options_.latest_checkpoint(job.id)) saved = c->time;
    }
    if (saved) {
      std::lock_guard lock(mu_);
      scheduler_->Checkpointed(job.id, Seconds(*saved));
    }
    for (int port : a.allocation.ports) {
      if (!ports_->Reserve(port)) {
        spdlog::warn("job {}: port {} of its attempt is reserved by another process", job.id, port);
      }
    }
    ++reattached;
    to_refresh.push_back(active);
    // A preemption that dlabd had begun goes on (stopping twice is harmless).
    if (job.cancel_requested || job.state == JobState::kPreempted) {
      backend_->Cancel(a.dir).IgnoreError();
    }
  }
  if (auto span = scheduler_->UsageHistorySpan()) {
    // Fair share's memory of who used the cluster lately, from the attempts in the database.
    absl::Time now = absl::Now();
    auto spans = store_->AttemptsSince(now - absl::Seconds(*span));
    if (!spans.ok()) return spans.status();
    std::vector<PastUse> past;
    for (const AttemptSpan& a : *spans) {
      past.push_back({.tenant_id = a.tenant_id,
                      .tasks = NodeTasksOf(a.allocation),
                      .start_s = Seconds(a.start_time),
                      .end_s = Seconds(a.end_time.value_or(now))});
    }
    std::map<int64_t, double> weights;
    if (options_.tenant_weights) weights = options_.tenant_weights();
    std::lock_guard lock(mu_);
    scheduler_->SetTenantWeights(std::move(weights));
    scheduler_->SetUsageHistory(past, Seconds(now));
  }
  for (const Active& a : to_refresh) RefreshActive(a);
  spdlog::info("recovered {} active jobs ({} attempts reattached)", jobs->size(), reattached);
  return absl::OkStatus();
}

}  // namespace dlab
