// What the backends whose attempts run under dlab-shim (local, Slurm) share: the launch spec
// the shim reads, and the AttemptStatus read back from the files it records. Plain functions.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "backend/local/attempt_files.h"

namespace dlab {

// InvalidArgument for a request without tasks, a task without argv, or an attempt_dir that is
// not an existing absolute directory; AlreadyExists when the attempt was already launched.
absl::Status CheckLaunchRequest(const LaunchRequest& request);

// The shim's launch.json for a request; the shim notifies notify_socket ("": nobody).
LaunchSpec ToLaunchSpec(const LaunchRequest& request, const std::string& notify_socket);

// The status of a launched attempt from its files. supervisor_alive is asked only when no exit
// is recorded yet, and the exit file is read again after it says no (the supervisor records
// the exit before it goes): kStarting or kRunning while alive, kExited once recorded, kLost
// otherwise (with a generic message the caller may replace). NotFound when never launched.
absl::StatusOr<AttemptStatus> ReadAttemptStatus(const std::string& attempt_dir,
                                                const std::function<bool()>& supervisor_alive);

}  // namespace dlab
