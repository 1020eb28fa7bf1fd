// ForwardingStore: a Store that passes every call to another. Wrappers derive from it and
// override only the calls they change (CountingStore counts the writes; tests refuse some).
#pragma once

#include "store/store.h"

namespace dlab {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store* inner) : inner_(inner) {}

  absl::StatusOr<CreateJobResult> CreateJob(const NewJob& job) override {
    return inner_->CreateJob(job);
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
    return inner_->Transition(transition);
  }
  absl::Status UpdateAttempt(int64_t job_id, const AttemptUpdate& update) override {
    return inner_->UpdateAttempt(job_id, update);
  }
  absl::Status SetCancelRequested(int64_t job_id) override {
    return inner_->SetCancelRequested(job_id);
  }
  absl::Status SetReasons(const std::map<int64_t, std::string>& reasons) override {
    return inner_->SetReasons(reasons);
  }
  absl::StatusOr<std::map<JobState, int64_t>> CountByState() override {
    return inner_->CountByState();
  }
  absl::StatusOr<int64_t> CountJobs(int64_t tenant_id, JobState state) override {
    return inner_->CountJobs(tenant_id, state);
  }

 private:
  Store* inner_;
};

}  // namespace dlab
