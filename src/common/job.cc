#include "common/job.h"

#include <array>

namespace dlab {
namespace {
constexpr std::array<std::pair<JobState, std::string_view>, 8> kNames = {{
    {JobState::kQueued, "QUEUED"},
    {JobState::kStarting, "STARTING"},
    {JobState::kRunning, "RUNNING"},
    {JobState::kSucceeded, "SUCCEEDED"},
    {JobState::kFailed, "FAILED"},
    {JobState::kCancelled, "CANCELLED"},
    {JobState::kPreempted, "PREEMPTED"},
    {JobState::kRestarting, "RESTARTING"},
}};
}  // namespace

std::string_view JobStateName(JobState s) {
  for (const auto& [state, name] : kNames) {
    if (state == s) return name;
  }
  return "UNKNOWN";
}

std::optional<JobState> ParseJobState(std::string_view name) {
  for (const auto& [state, n] : kNames) {
    if (n == name) return state;
  }
  return std::nullopt;
}

bool IsTerminal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}

const std::vector<JobState>& AllJobStates() {
  static const std::vector<JobState> kAll = [] {
    std::vector<JobState> v;
    for (const auto& [state, name] : kNames) v.push_back(state);
    return v;
  }();
  return kAll;
}

}  // namespace dlab
