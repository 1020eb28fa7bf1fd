// CountingStore: a Store that passes every call to another and counts the calls that change a
// job (submit, transition, attempt update, cancel request, reason). Watchers (the console's live
// jobs table) compare the count with the one they last saw instead of querying the database.
#pragma once

#include <atomic>
#include <cstdint>

#include "store/store.h"

namespace dlab {

class CountingStore final : public Store {
 public:
  explicit CountingStore(Store* inner) : inner_(inner) {}

  // Grows by at least one after every change; never shrinks.
  uint64_t changes() const { return changes_.load(std::memory_order_acquire); }

  absl::StatusOr<CreateJobResult> CreateJob(const NewJob& job) override {
    return Counted(inner_->CreateJob(job));
  }
  absl::StatusOr<JobRecord> GetJob(int64_t id) override { return inner_->GetJob(id); }
  absl::StatusOr<JobRecord> FindJobByIdempotencyKey(const std::string& key) override {
    return inner_->FindJobByIdempotencyKey(key);
  }
  absl::StatusOr<std::vector<JobRecord>> ListJobs(const JobFilter& filter) override {
    return inner_->ListJobs(filter);
  }
  absl::StatusOr<std::vector<JobRecord>> ActiveJobs() override { return inner_->ActiveJobs(); }
  absl::StatusOr<std::vector<AttemptRecord>> ListAttempts(int64_t job_id) override {
    return inner_->ListAttempts(job_id);
  }
  absl::StatusOr<std::vector<AttemptSpan>> AttemptsSince(absl::Time since) override {
    return inner_->AttemptsSince(since);
  }
  absl::StatusOr<std::vector<EventRecord>> ListEvents(int64_t job_id) override {
    return inner_->ListEvents(job_id);
  }
  absl::Status Transition(const JobTransition& transition) override {
    return Counted(inner_->Transition(transition));
  }
  absl::Status UpdateAttempt(int64_t job_id, const AttemptUpdate& update) override {
    return Counted(inner_->UpdateAttempt(job_id, update));
  }
  absl::Status SetCancelRequested(int64_t job_id) override {
    return Counted(inner_->SetCancelRequested(job_id));
  }
  absl::Status SetReasons(const std::map<int64_t, std::string>& reasons) override {
    return Counted(inner_->SetReasons(reasons));
  }
  absl::StatusOr<std::map<JobState, int64_t>> CountByState() override {
    return inner_->CountByState();
  }
  absl::StatusOr<int64_t> CountJobs(int64_t tenant_id, JobState state) override {
    return inner_->CountJobs(tenant_id, state);
  }

 private:
  // Counted also when the call failed: a failed write may still have changed something (a
  // lost commit acknowledgement), and a spurious count only costs the watchers one query.
  template <typename T>
  T Counted(T result) {
    changes_.fetch_add(1, std::memory_order_acq_rel);
    return result;
  }

  Store* inner_;
  std::atomic<uint64_t> changes_{0};
};

}  // namespace dlab
