// The job domain: states, the job spec as submitted by a user, and an allocation on a node.
// Plain value types, no behaviour beyond conversions; safe to copy between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace dlab {

enum class JobState {
  kQueued,
  kStarting,
  kRunning,
  kSucceeded,
  kFailed,
  kCancelled,
  kPreempted,
  kRestarting
};

// "QUEUED", "RUNNING", ... as used in the API, the store and the CLI.
std::string_view JobStateName(JobState s);
std::optional<JobState> ParseJobState(std::string_view name);
bool IsTerminal(JobState s);
// Every state, in lifecycle order.
const std::vector<JobState>& AllJobStates();

struct Resources {
  int64_t cpu_millis = 1000;         // "2" = 2000, "500m" = 500
  int64_t memory_bytes = 1LL << 30;  // "4Gi"
  int gpus = 0;
  std::string gpu_type;  // empty: any type
};

struct JobSpec {
  std::string name;
  std::vector<std::string> command;  // argv; a shell string becomes {"/bin/sh", "-c", s}
  bool shell = false;                // true when command was given as one string
  std::string workdir = ".";         // relative to the code snapshot root
  std::map<std::string, std::string> env;
  Resources resources;
  int priority = 0;
  absl::Duration max_runtime = absl::ZeroDuration();  // zero: no limit
  int max_restarts = 0;
  std::map<std::string, std::string> labels;
};

// What the scheduler handed to one attempt on this machine.
struct Allocation {
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  std::vector<int> gpus;  // device indices on the node
};

}  // namespace dlab
