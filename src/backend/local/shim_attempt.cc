#include "backend/local/shim_attempt.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace dlab {
namespace {

std::optional<absl::Time> FromMillis(int64_t ms) {
  if (ms <= 0) return std::nullopt;
  return absl::FromUnixMillis(ms);
}

}  // namespace

absl::Status CheckLaunchRequest(const LaunchRequest& request) {
  const std::string& dir = request.attempt_dir;
  if (request.tasks.empty()) return absl::InvalidArgumentError("launch: no task");
  for (const TaskLaunch& t : request.tasks) {
    if (t.argv.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("launch: task ", t.rank, " has an empty argv"));
    }
  }
  if (dir.empty() || dir[0] != '/' || !std::filesystem::is_directory(dir)) {
    return absl::InvalidArgumentError(
        absl::StrCat("launch: attempt_dir ", dir, " is not an absolute directory"));
  }
  if (FileExists(AttemptFile(dir, kLaunchFile))) {
    return absl::AlreadyExistsError(absl::StrCat("attempt ", dir, " was already launched"));
  }
  return absl::OkStatus();
}

LaunchSpec ToLaunchSpec(const LaunchRequest& request, const std::string& notify_socket) {
  std::vector<TaskSpec> tasks;
  for (const TaskLaunch& t : request.tasks) {
    tasks.push_back({.rank = t.rank,
                     .argv = t.argv,
                     .env = t.env,
                     .log_path = t.log_path,
                     .cpu_millis = t.allocation.cpu_millis,
                     .memory_bytes = t.allocation.memory_bytes,
                     .gpus = t.allocation.gpus,
                     .auxiliary = t.auxiliary,
                     .role = t.role,
                     .role_index = t.role_index});
  }
  return {.job_id = request.job_id,
          .attempt = request.attempt,
          .workdir = request.workdir,
          .env = request.env,
          .log_path = request.log_path,
          .tasks = std::move(tasks),
          .max_runtime_ms = absl::ToInt64Milliseconds(request.max_runtime),
          .kill_grace_ms = absl::ToInt64Milliseconds(request.kill_grace),
          .notify_socket = notify_socket};
}

absl::StatusOr<AttemptStatus> ReadAttemptStatus(const std::string& attempt_dir,
                                                const std::function<bool()>& supervisor_alive) {
  if (!FileExists(AttemptFile(attempt_dir, kLaunchFile))) {
    return absl::NotFoundError(absl::StrCat("attempt ", attempt_dir, " was never launched"));
  }
  AttemptStatus status;
  absl::StatusOr<StartedRecord> started = ReadStartedRecord(AttemptFile(attempt_dir, kStartedFile));
  if (started.ok()) {
    status.start_time = FromMillis(started->start_time_ms);
    status.limit_notes = started->limit_notes;
  } else if (!absl::IsNotFound(started.status())) {
    return started.status();
  }
  std::string exit_file = AttemptFile(attempt_dir, kExitFile);
  bool alive = !FileExists(exit_file) && supervisor_alive();
  if (alive) {
    status.phase = started.ok() ? AttemptPhase::kRunning : AttemptPhase::kStarting;
    return status;
  }
  // Read after the liveness check: the supervisor writes exit.json before it goes.
  absl::StatusOr<ExitRecord> exit = ReadExitRecord(exit_file);
  if (absl::IsNotFound(exit.status())) {
    status.phase = AttemptPhase::kLost;
    status.message =
        "the attempt's supervisor is gone and recorded no exit status (machine restarted?)";
    return status;
  }
  if (!exit.ok()) return exit.status();
  status.phase = AttemptPhase::kExited;
  status.exit_code = exit->exit_code;
  status.signal = exit->signal;
  status.end_reason = exit->end_reason;
  status.message = exit->message;
  status.end_time = FromMillis(exit->end_time_ms);
  status.failed_rank = exit->failed_rank;
  for (const TaskExit& t : exit->tasks) {
    status.tasks.push_back(
        {.rank = t.rank, .exit_code = t.exit_code, .signal = t.signal, .end_reason = t.end_reason});
  }
  if (status.limit_notes.empty()) status.limit_notes = exit->limit_notes;
  return status;
}

}  // namespace dlab
