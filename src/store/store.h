// Store: the metadata of jobs, their attempts and their events. Every state change is written
// together with its event in one transaction, and a call returns only once its change is durable
// (survives the process being killed). The default implementation is SQLite in WAL mode.
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/job.h"

namespace dlab {

struct AttemptRecord {
  int64_t job_id = 0;
  int number = 0;  // 1, 2, ...
  JobState state = JobState::kStarting;
  std::string reason;
  Allocation allocation;
  std::string dir;  // the attempt's directory on the node
  absl::Time create_time;
  std::optional<absl::Time> start_time;
  std::optional<absl::Time> end_time;
  std::optional<int> exit_code;
  std::vector<std::string> limit_notes;
  std::string failure;           // a failed attempt: "user" or "infrastructure"
  bool restart_counted = false;  // its failure counted against max_restarts
  std::optional<CheckpointRef> resumed_from;
  std::vector<TaskEnd> tasks;  // once it ended, by rank
};

// When an attempt held its allocation, and whose it was.
struct AttemptSpan {
  int64_t job_id = 0;
  int64_t tenant_id = 1;
  Allocation allocation;
  absl::Time start_time;
  std::optional<absl::Time> end_time;  // unset: still running
};

struct JobRecord {
  int64_t id = 0;
  int64_t tenant_id = 1;  // 1: the tenant "default"
  std::string owner;      // the user who submitted it
  JobSpec spec;
  std::string snapshot;  // "sha256:<hex>" or empty
  JobState state = JobState::kQueued;
  std::string reason;
  absl::Time submit_time;
  absl::Time update_time;
  std::optional<absl::Time> start_time;
  std::optional<absl::Time> end_time;
  std::optional<int> exit_code;
  int attempts = 0;  // number of the latest attempt; 0 before the first
  bool cancel_requested = false;
  std::string idempotency_key;
  std::vector<AttemptRecord> attempt_list;  // oldest first; read together with the job
};

struct EventRecord {
  int64_t id = 0;
  int64_t job_id = 0;
  absl::Time time;
  std::optional<JobState> from;  // none for the submission
  JobState to = JobState::kQueued;
  std::string reason;
};

struct NewJob {
  int64_t tenant_id = 1;
  std::string owner;
  JobSpec spec;
  std::string snapshot;
  std::string idempotency_key;  // empty: none
  absl::Time submit_time;
};

struct CreateJobResult {
  JobRecord job;
  bool created = true;  // false: an earlier job with the same idempotency key
};

struct JobFilter {
  int64_t tenant_id = 0;                      // only this tenant's jobs; 0: every tenant's
  std::string owner;                          // only this user's jobs; empty: anyone's
  std::vector<JobState> states;               // any of; empty: all
  std::map<std::string, std::string> labels;  // all must match
  int64_t before_id = 0;                      // cursor: only ids below; 0: from the newest
  int limit = 50;
};

// Changes to the current attempt, applied with a job transition or alone.
struct AttemptUpdate {
  int number = 0;
  std::optional<JobState> state;
  std::optional<std::string> reason;
  std::optional<absl::Time> start_time;
  std::optional<absl::Time> end_time;
  std::optional<int> exit_code;
  std::optional<std::vector<std::string>> limit_notes;
  std::optional<std::string> failure;
  std::optional<bool> restart_counted;
  std::optional<std::vector<TaskEnd>> tasks;
};

// One state change of a job, written atomically with its event.
struct JobTransition {
  int64_t job_id = 0;
  JobState from = JobState::kQueued;  // compare-and-set: the job must still be in this state
  JobState to = JobState::kQueued;
  std::string reason;
  absl::Time time;
  std::optional<int> exit_code;
  std::optional<AttemptRecord> new_attempt;  // inserted; the job's attempt count follows it
  std::optional<AttemptUpdate> attempt_update;
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens (creating if needed) the SQLite database at path and migrates it to the current
  // schema. Unavailable when the file cannot be opened or is not a dlab database.
  static absl::StatusOr<std::unique_ptr<Store>> OpenSqlite(const std::string& path);

  // Inserts a QUEUED job with its "submitted" event. With an idempotency key that is already
  // known, returns that job with created = false.
  virtual absl::StatusOr<CreateJobResult> CreateJob(const NewJob& job) = 0;
  // NotFound for an unknown id.
  virtual absl::StatusOr<JobRecord> GetJob(int64_t id) = 0;
  // The job created with this idempotency key; NotFound when there is none.
  virtual absl::StatusOr<JobRecord> FindJobByIdempotencyKey(const std::string& key) = 0;
  // Newest first.
  virtual absl::StatusOr<std::vector<JobRecord>> ListJobs(const JobFilter& filter) = 0;
  // Jobs not in a terminal state, in queue order: priority (high first), submit time, id.
  virtual absl::StatusOr<std::vector<JobRecord>> ActiveJobs() = 0;
  virtual absl::StatusOr<std::vector<AttemptRecord>> ListAttempts(int64_t job_id) = 0;
  // Attempts that started and had not ended by `since` (running ones too): the tenants' recent
  // use of the cluster, which fair share's usage history is rebuilt from when dlabd starts.
  virtual absl::StatusOr<std::vector<AttemptSpan>> AttemptsSince(absl::Time since) = 0;
  // Oldest first.
  virtual absl::StatusOr<std::vector<EventRecord>> ListEvents(int64_t job_id) = 0;

  // FailedPrecondition when the job is no longer in transition.from; NotFound for unknown ids.
  virtual absl::Status Transition(const JobTransition& transition) = 0;
  virtual absl::Status UpdateAttempt(int64_t job_id, const AttemptUpdate& update) = 0;
  // Records that the user asked for cancellation. NotFound for unknown ids.
  virtual absl::Status SetCancelRequested(int64_t job_id) = 0;
  // Updates queued jobs' reasons without a state change (why a job waits), job id -> reason,
  // in one transaction; no event. A job that is gone or no longer QUEUED is skipped (it keeps
  // the reason of the transition that took it out of the queue).
  virtual absl::Status SetReasons(const std::map<int64_t, std::string>& reasons) = 0;
  virtual absl::StatusOr<std::map<JobState, int64_t>> CountByState() = 0;
  // How many of the tenant's jobs are in the given state.
  virtual absl::StatusOr<int64_t> CountJobs(int64_t tenant_id, JobState state) = 0;
};

}  // namespace dlab
