// Runs a program to its end and captures what it prints (for the command-line tools of a
// cluster manager, e.g. sbatch and squeue). Thread-safe: any thread may run commands.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dlab {

struct CommandResult {
  int exit_code = 0;  // or 128+N when killed by signal N
  std::string out;    // stdout
  std::string err;    // stderr
};

struct CommandOptions {
  absl::Duration timeout = absl::Seconds(30);  // then SIGKILL, and DeadlineExceeded
  size_t max_output = 16 << 20;                // bytes kept of each stream
};

// argv[0] is looked up on PATH when it has no '/'. The child's stdin is /dev/null, its
// environment this process's. NotFound when argv[0] cannot be run; DeadlineExceeded after
// the timeout; Internal for pipe or spawn failures. A non-zero exit is not an error here.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const CommandOptions& options = {});

// "sbatch --parsable x" for messages: the argv joined by spaces.
std::string CommandText(const std::vector<std::string>& argv);

// This process's environment as NAME -> value (the first entry of a name, as getenv finds it;
// entries without a name are left out).
std::map<std::string, std::string> ProcessEnvironment();

}  // namespace dlab
