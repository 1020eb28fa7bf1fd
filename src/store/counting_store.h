// CountingStore: a Store that passes every call to another and counts the calls that change a
// job (submit, transition, attempt update, cancel request, reason). Watchers (the console's live
// jobs table) compare the count with the one they last saw instead of querying the database.
#pragma once

#include <atomic>
#include <cstdint>

#include "store/forwarding_store.h"

namespace dlab {

class CountingStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;

  // Grows by at least one after every change; never shrinks.
  uint64_t changes() const { return changes_.load(std::memory_order_acquire); }

  absl::StatusOr<CreateJobResult> CreateJob(const NewJob& job) override {
    return Counted(ForwardingStore::CreateJob(job));
  }
  absl::Status Transition(const JobTransition& transition) override {
    return Counted(ForwardingStore::Transition(transition));
  }
  absl::Status UpdateAttempt(int64_t job_id, const AttemptUpdate& update) override {
    return Counted(ForwardingStore::UpdateAttempt(job_id, update));
  }
  absl::Status SetCancelRequested(int64_t job_id) override {
    return Counted(ForwardingStore::SetCancelRequested(job_id));
  }
  absl::Status SetReasons(const std::map<int64_t, std::string>& reasons) override {
    return Counted(ForwardingStore::SetReasons(reasons));
  }

 private:
  // Counted also when the call failed: a failed write may still have changed something (a
  // lost commit acknowledgement), and a spurious count only costs the watchers one query.
  template <typename T>
  T Counted(T result) {
    changes_.fetch_add(1, std::memory_order_acq_rel);
    return result;
  }

  std::atomic<uint64_t> changes_{0};
};

}  // namespace dlab
