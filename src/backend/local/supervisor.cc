#include "backend/local/supervisor.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/local/attempt_files.h"
#include "backend/local/cgroup.h"
#include "common/quantity.h"

extern char** environ;

namespace dlab {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

// What the forked child reports through the CLOEXEC pipe when it cannot exec the command.
struct ChildError {
  enum Stage : int { kOpenLog, kChdir, kExec } stage;
  int err;
};

// argv and envp for execvp, built before fork so that the child does not allocate.
struct ExecArgs {
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

ExecArgs BuildExecArgs(const LaunchSpec& spec) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) continue;
    env[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
  }
  for (const auto& [key, value] : spec.env) env[key] = value;
  env["CUDA_VISIBLE_DEVICES"] = absl::StrJoin(spec.gpus, ",");

  ExecArgs args;
  for (const auto& [key, value] : env) args.env_storage.push_back(absl::StrCat(key, "=", value));
  for (std::string& entry : args.env_storage) args.envp.push_back(entry.data());
  args.envp.push_back(nullptr);
  for (const std::string& arg : spec.argv) args.argv.push_back(const_cast<char*>(arg.c_str()));
  args.argv.push_back(nullptr);
  return args;
}

// In the forked child: only async-signal-safe calls until exec.
[[noreturn]] void RunChild(const LaunchSpec& spec, const AttemptCgroup& cgroup, ExecArgs& args,
                           int error_fd) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  setpgid(0, 0);
  cgroup.JoinFromChild();

  auto fail = [error_fd](ChildError::Stage stage) {
    ChildError error{stage, errno};
    (void)!write(error_fd, &error, sizeof(error));
    _exit(127);
  };
  int log = open(spec.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log < 0) fail(ChildError::kOpenLog);
  if (dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0) fail(ChildError::kOpenLog);
  if (chdir(spec.workdir.c_str()) != 0) fail(ChildError::kChdir);
  environ = args.envp.data();
  execvp(args.argv[0], args.argv.data());
  fail(ChildError::kExec);
  _exit(127);
}

std::string ChildErrorMessage(const LaunchSpec& spec, const ChildError& error) {
  switch (error.stage) {
    case ChildError::kOpenLog:
      return absl::StrCat("open log ", spec.log_path, ": ", std::strerror(error.err));
    case ChildError::kChdir:
      return absl::StrCat("chdir ", spec.workdir, ": ", std::strerror(error.err));
    case ChildError::kExec:
      break;
  }
  return absl::StrCat("exec ", spec.argv[0], ": ", std::strerror(error.err));
}

void AppendToLog(const std::string& path, const std::string& line) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string text = line + "\n";
  (void)!write(fd, text.data(), text.size());
  close(fd);
}

// Reaps every exited child (the command, and orphans adopted as subreaper); returns the wait
// status of `main_pid` when it was among them.
std::optional<int> ReapChildren(pid_t main_pid) {
  std::optional<int> main_status;
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == main_pid) main_status = status;
  }
  return main_status;
}

class Supervisor {
 public:
  Supervisor(const SupervisorOptions& options, LaunchSpec spec)
      : options_(options), spec_(std::move(spec)) {}

  absl::Status Run() {
    // Named after the data dir's hash too: several dlabd instances may share a machine, and
    // job ids repeat between them.
    cgroup_ = AttemptCgroup::Create(
        absl::StrCat(spec_.notify_socket, "-job-", spec_.job_id, "-", spec_.attempt),
        {.cpu_millis = spec_.cpu_millis, .memory_bytes = spec_.memory_bytes},
        {.fs_root = options_.cgroup_root, .disabled = options_.disable_cgroups});
    if (spec_.argv.empty()) return Finish(FailedStart("launch.json has an empty argv"));
    absl::StatusOr<pid_t> pid = Start();
    if (!pid.ok()) return Finish(FailedStart(std::string(pid.status().message())));
    return Finish(Wait(*pid));
  }

 private:
  ExitRecord FailedStart(std::string message) {
    AppendToLog(spec_.log_path, message);
    return {.exit_code = 127, .end_reason = "exec_failed", .message = std::move(message)};
  }

  // Forks and execs the command; records started.json. An error carries the message for
  // exit.json.
  absl::StatusOr<pid_t> Start() {
    ExecArgs args = BuildExecArgs(spec_);
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    }
    oom_kills_before_ = cgroup_->OomKillCount();
    pid_t pid = fork();
    if (pid < 0) {
      int err = errno;
      close(pipe_fds[0]);
      close(pipe_fds[1]);
      return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
    }
    if (pid == 0) {
      close(pipe_fds[0]);
      RunChild(spec_, *cgroup_, args, pipe_fds[1]);
    }
    close(pipe_fds[1]);
    setpgid(pid, pid);  // also here, so that kill(-pid) works however early a cancel comes
    ChildError error{};
    ssize_t n;
    do {
      n = read(pipe_fds[0], &error, sizeof(error));
    } while (n < 0 && errno == EINTR);
    close(pipe_fds[0]);
    if (n == sizeof(error)) {
      int status;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return absl::InternalError(ChildErrorMessage(spec_, error));
    }
    absl::Status written = WriteStartedRecord(
        AttemptFile(options_.attempt_dir, kStartedFile),
        {.pid = pid, .pgid = pid, .start_time_ms = NowMs(), .limit_notes = cgroup_->notes()});
    if (!written.ok()) std::fprintf(stderr, "dlab-shim: %s\n", written.ToString().c_str());
    SendNotification(spec_.notify_socket, options_.attempt_dir);
    return pid;
  }

  // Waits for the command, enforcing cancel and max_runtime, and describes how it ended.
  ExitRecord Wait(pid_t pid) {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT}) sigaddset(&set, sig);
    std::optional<Clock::time_point> runtime_deadline;
    if (spec_.max_runtime_ms > 0) {
      runtime_deadline = Clock::now() + std::chrono::milliseconds(spec_.max_runtime_ms);
    }
    std::optional<Clock::time_point> kill_deadline;
    std::optional<int> status = ReapChildren(pid);
    while (!status.has_value()) {
      std::optional<Clock::time_point> next = kill_deadline ? kill_deadline : runtime_deadline;
      siginfo_t info;
      int sig;
      if (next.has_value()) {
        auto left = std::max(Clock::duration::zero(), *next - Clock::now());
        auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
        timespec ts{
            .tv_sec = secs.count(),
            .tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(left - secs).count()};
        sig = sigtimedwait(&set, &info, &ts);
      } else {
        sig = sigwaitinfo(&set, &info);
      }
      Clock::time_point now = Clock::now();
      if (sig == SIGCHLD) {
        status = ReapChildren(pid);
        continue;
      }
      absl::string_view stop_reason;
      if (sig == SIGTERM || sig == SIGINT) {
        stop_reason = "cancelled";
      } else if (runtime_deadline && now >= *runtime_deadline) {
        stop_reason = "max_runtime";
      }
      if (!stop_reason.empty() && stop_reason_.empty()) {
        stop_reason_ = std::string(stop_reason);
        kill(-pid, SIGTERM);
        kill_deadline = now + std::chrono::milliseconds(std::max<int64_t>(0, spec_.kill_grace_ms));
        runtime_deadline.reset();
      } else if (kill_deadline && now >= *kill_deadline) {
        kill(-pid, SIGKILL);
        cgroup_->KillAll();
        kill_deadline.reset();
      }
    }
    kill(-pid, SIGKILL);  // whatever the command left behind in its group
    cgroup_->KillAll();
    ReapChildren(pid);
    return Describe(*status);
  }

  ExitRecord Describe(int status) {
    ExitRecord record{.end_reason = "exited"};
    std::string how;
    if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      record.exit_code = 128 + sig;
      record.signal = SignalName(sig);
      how = absl::StrCat("killed by ", record.signal);
      int64_t oom_kills = cgroup_->OomKillCount();
      if (sig == SIGKILL && oom_kills_before_ >= 0 && oom_kills > oom_kills_before_ &&
          stop_reason_.empty()) {
        record.end_reason = "oom_killed";
        how = absl::StrCat("killed by the kernel OOM killer (memory limit ",
                           FormatMemoryBytes(spec_.memory_bytes), ")");
      }
    } else {
      record.exit_code = WEXITSTATUS(status);
      how = absl::StrCat("exited with code ", record.exit_code);
    }
    if (stop_reason_ == "cancelled") {
      record.end_reason = "cancelled";
      how = absl::StrCat("cancelled: ", how);
    } else if (stop_reason_ == "max_runtime") {
      record.end_reason = "max_runtime";
      how = absl::StrCat("max_runtime ",
                         absl::FormatDuration(absl::Milliseconds(spec_.max_runtime_ms)),
                         " exceeded: ", how);
    }
    record.message = std::move(how);
    return record;
  }

  // Records exit.json (before the lock is released, when this process exits), removes the
  // cgroup and notifies dlabd.
  absl::Status Finish(ExitRecord record) {
    record.end_time_ms = NowMs();
    record.limit_notes = cgroup_->notes();
    absl::Status written = WriteExitRecord(AttemptFile(options_.attempt_dir, kExitFile), record);
    cgroup_->Remove();
    SendNotification(spec_.notify_socket, options_.attempt_dir);
    return written;
  }

  const SupervisorOptions& options_;
  const LaunchSpec spec_;
  std::unique_ptr<AttemptCgroup> cgroup_;
  int64_t oom_kills_before_ = -1;
  std::string stop_reason_;  // "cancelled" or "max_runtime" once stopping began
};

}  // namespace

absl::Status RunSupervisor(const SupervisorOptions& options) {
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&blocked, sig);
  sigprocmask(SIG_BLOCK, &blocked, nullptr);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  if (options.lock_fd >= 0) fcntl(options.lock_fd, F_SETFD, FD_CLOEXEC);
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  absl::Status pid_written = WriteFileAtomically(AttemptFile(options.attempt_dir, kShimPidFile),
                                                 absl::StrCat(getpid(), "\n"), {.sync = false});
  if (!pid_written.ok()) std::fprintf(stderr, "dlab-shim: %s\n", pid_written.ToString().c_str());

  absl::StatusOr<LaunchSpec> spec = ReadLaunchSpec(AttemptFile(options.attempt_dir, kLaunchFile));
  if (!spec.ok()) {
    std::string message = absl::StrCat("read launch spec: ", spec.status().message());
    absl::Status written =
        WriteExitRecord(AttemptFile(options.attempt_dir, kExitFile), {.exit_code = 127,
                                                                      .end_reason = "exec_failed",
                                                                      .message = message,
                                                                      .end_time_ms = NowMs()});
    return written.ok() ? absl::OkStatus() : written;
  }
  return Supervisor(options, *std::move(spec)).Run();
}

}  // namespace dlab
