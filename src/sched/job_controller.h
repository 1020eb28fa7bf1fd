// JobController: the job lifecycle on one node. Submit commits a job before returning; one
// controller thread schedules queued jobs (by the configured policy, see framework.h), stops
// the jobs it preempts and requeues them, launches attempts through the
// Backend, turns what supervisors report into state transitions (with restarts per
// max_restarts), and on Start reattaches to attempts that outlived a previous dlabd.
// Thread-safe: public methods may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "sched/framework.h"
#include "sched/ports.h"
#include "sched/scheduler.h"
#include "store/snapshot_store.h"
#include "store/store.h"

namespace dlab {

// A checkpoint a job recorded, and when.
struct SavedCheckpoint {
  CheckpointRef ref;
  absl::Time time;
};

struct ControllerOptions {
  std::string data_dir;  // jobs live under data_dir/jobs/<id>/
  // The nodes attempts run on: the local backend's one, or every node of a Slurm or Kubernetes
  // cluster (whose manager places the tasks; dlab admits against the nodes). A job must fit
  // them (submit-time validation). At least one.
  std::vector<NodeCapacity> nodes;
  // More nodes the scheduler fills, when the backend keeps a queue of its own that dlab should
  // keep fed (Slurm's queue_ahead): attempts placed on them wait there.
  std::vector<NodeCapacity> queue_ahead_nodes;
  SchedulerConfig scheduler;  // the policy; must be valid (NewScheduler accepts it)
  absl::Duration kill_grace = absl::Seconds(30);
  absl::Duration reconcile_interval = absl::Seconds(1);
  int first_port = 25000;  // MASTER_PORT and TF_CONFIG ports come from [first_port, last_port]
  int last_port = 29999;
  std::function<bool(int port)> port_is_free;  // default: a real bind
  bool machine_wide_ports = true;  // reserve ports against other dlabd on the machine too
  // The newest checkpoint the job recorded, if any: DLAB_RESUME_FROM of the next attempt, and,
  // for an attempt found running at start, where its work since is counted from.
  std::function<std::optional<SavedCheckpoint>(int64_t job_id)> latest_checkpoint;
  // Where the Python SDK (package dlab) is: put first on every task's PYTHONPATH. "": nowhere.
  std::string python_sdk_dir;
  // The job's token for the SDK (DLAB_TOKEN); unset: none.
  std::function<std::string(int64_t job_id)> job_token;
  // Every tenant's quota (tenants without limits may be left out); unset: no quotas.
  std::function<std::map<int64_t, TenantQuota>()> tenant_quotas;
  // Fair-share weights by tenant id; unset: every tenant weighs 1.
  std::function<std::map<int64_t, double>()> tenant_weights;
};

// Observations the controller reports for /metrics; called on the controller thread.
struct ControllerObserver {
  std::function<void(absl::Duration submit_to_running)> on_started;
};

class JobController final {
 public:
  JobController(ControllerOptions options, Store* store, SnapshotStore* snapshots, Backend* backend,
                ControllerObserver observer = {});
  ~JobController();
  JobController(const JobController&) = delete;
  JobController& operator=(const JobController&) = delete;

  // Recovers jobs left by a previous run (reattaching to live attempts) and starts the
  // controller thread. api_url is given to workloads as DLAB_API_URL. Unavailable if the
  // store cannot be read.
  absl::Status Start(const std::string& api_url);
  void Stop();

  // Validated spec in; InvalidArgument when it can never run here, PermissionDenied when it
  // exceeds its tenant's quota (so could never start), ResourceExhausted when the tenant already
  // has its quota of queued jobs, NotFound for an unknown snapshot. The job is durable when
  // this returns. Idempotency keys are per tenant.
  absl::StatusOr<CreateJobResult> Submit(const JobSpec& spec, const std::string& snapshot,
                                         const std::string& idempotency_key, int64_t tenant_id = 1,
                                         const std::string& owner = "");
  // What the tenant's jobs hold now (running) and how many wait (queued).
  TenantUsage Usage(int64_t tenant_id);
  // Looks at the queue again (e.g. after a quota changed).
  void Reschedule();
  // NotFound; FailedPrecondition when the job already ended. Returns the job after the request.
  absl::StatusOr<JobRecord> Cancel(int64_t job_id);
  // The log file of an attempt (0: the latest): of one task (task >= 0), or the attempt's log
  // (task -1: the only task's, or every task's lines by rank). NotFound for unknown jobs,
  // attempts or tasks. An empty path when the job has not started yet.
  absl::StatusOr<std::string> LogPath(int64_t job_id, int attempt, int task = -1);
  // Running attempts: job id, attempt number and the job's output directory.
  struct RunningAttempt {
    int64_t job_id = 0;
    int attempt = 0;
    std::string output_dir;
    std::vector<int> gpus;  // device indices on the node (local backend)
  };
  std::vector<RunningAttempt> Running();
  // The job saved a checkpoint now: if it is preempted, it loses only the work since.
  void Checkpointed(int64_t job_id);
  std::string OutputDir(int64_t job_id) const;
  // The queue in scheduling order: each queued job's reason for waiting and, where known, its
  // estimated start (see Scheduler::Queue; the forecast gets half a second of wall time,
  // on a copy of the scheduler, so that scheduling does not wait for it). A forecast is shared
  // by callers until a job enters, starts, stops or leaves the scheduler, for at most 5 s.
  struct QueuedJobView {
    int64_t job_id = 0;
    int64_t tenant_id = 0;
    std::string reason;
    std::optional<absl::Time> estimated_start;
  };
  struct QueueForecast {
    absl::Time time;  // when it was taken
    std::vector<QueuedJobView> jobs;
  };
  std::shared_ptr<const QueueForecast> Queue();
  // The scheduling policy's name (ControllerOptions::scheduler).
  const std::string& policy() const { return options_.scheduler.policy; }

 private:
  struct Active {
    int64_t job_id = 0;
    int attempt = 0;
    std::string dir;
    Allocation allocation;
    JobState state = JobState::kStarting;  // STARTING or RUNNING as last recorded
    absl::Time submit_time;
    int64_t tenant_id = 1;
    // Why the attempt could not be launched, when the store has not recorded it yet (its write
    // failed): the next reconcile records it, as the backend knows nothing of the attempt.
    std::optional<AttemptStatus> launch_failure;
  };
  void Loop();
  void RequeueDue();
  void Wake();
  void Enqueue(const JobRecord& job);
  void ScheduleOnce();
  void Launch(const JobRecord& job, const Allocation& allocation);
  // The job the scheduler started cannot be launched now: back to the queue in its place.
  // False when the job is no longer the scheduler's (cancelled meanwhile).
  bool Unstart(int64_t job_id);
  void Refresh(const std::string& attempt_dir);
  void RefreshActive(Active active);
  void Finish(const Active& active, const AttemptStatus& status);
  void FailLaunch(const Active& active, const std::string& reason);
  void Preempt(const PreemptDecision& decision);
  absl::Status Recover();
  std::string JobDir(int64_t job_id) const;
  std::string AttemptDir(int64_t job_id, int attempt) const;

  const ControllerOptions options_;
  Store* const store_;
  SnapshotStore* const snapshots_;
  Backend* const backend_;
  const ControllerObserver observer_;
  const std::vector<NodeCapacity> placement_nodes_;  // nodes, then queue_ahead_nodes

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                 // GUARDED_BY(mu_)
  bool dirty_ = true;                     // GUARDED_BY(mu_): reschedule
  std::set<std::string> changed_dirs_;    // GUARDED_BY(mu_)
  std::unique_ptr<Scheduler> scheduler_;  // GUARDED_BY(mu_)
  uint64_t generation_ = 0;  // GUARDED_BY(mu_): counts jobs entering, starting, stopping, leaving
  std::mutex forecast_mu_;   // taken before mu_; held while forecasting the queue
  std::shared_ptr<const QueueForecast> forecast_;  // GUARDED_BY(forecast_mu_): the latest
  uint64_t forecast_generation_ = 0;               // GUARDED_BY(forecast_mu_): generation_ then
  std::map<int64_t, int64_t> queued_;              // GUARDED_BY(mu_): job -> tenant
  std::mutex submit_mu_;  // one submission at a time checks the queued-jobs quota
  std::map<int64_t, absl::Time> restart_at_;       // GUARDED_BY(mu_): RESTARTING jobs' requeue
  const std::unique_ptr<PortPool> ports_;          // controller thread (and Start, before it runs)
  std::map<int64_t, Active> active_;               // GUARDED_BY(mu_), by job id
  std::map<std::string, int64_t> dir_to_job_;      // GUARDED_BY(mu_)
  std::map<int64_t, std::string> waiting_reason_;  // controller thread only
  std::string api_url_;                            // set by Start, before the thread runs
  std::thread thread_;
};

}  // namespace dlab
