#include "backend/local/local_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "backend/local/attempt_files.h"
#include "backend/local/shim_attempt.h"

extern char** environ;

namespace dlab {
namespace {

constexpr int kShimLockFd = 3;  // where dlab-shim finds the lock fd
constexpr int kPollTimeoutMs = 200;
constexpr auto kShimPidWait = std::chrono::seconds(1);

absl::Status ErrnoError(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

// One scan of /proc: SIGKILLs every process whose environment holds both entries; returns how
// many it found.
int KillProcessesWithEnvironment(const std::string& want_dir, const std::string& want_attempt) {
  int found = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid) || pid == getpid()) continue;
    absl::StatusOr<std::string> environ = ReadFile(entry.path().string() + "/environ");
    if (!environ.ok()) continue;
    bool dir_matches = false;
    bool attempt_matches = false;
    for (absl::string_view var : absl::StrSplit(*environ, '\0')) {
      dir_matches = dir_matches || var == want_dir;
      attempt_matches = attempt_matches || var == want_attempt;
    }
    if (dir_matches && attempt_matches) {
      kill(pid, SIGKILL);
      ++found;
    }
  }
  return found;
}

// The supervisor of attempt_dir died without recording an exit: SIGKILLs every process that
// still runs with the attempt's environment (DLAB_CHECKPOINT_DIR names this dlabd's data dir
// and the job; DLAB_ATTEMPT the attempt), whatever process group it moved to. Immune to pid
// reuse: processes are matched by what they were started with.
void KillLeftovers(const std::string& attempt_dir) {
  absl::StatusOr<LaunchSpec> spec = ReadLaunchSpec(AttemptFile(attempt_dir, kLaunchFile));
  if (!spec.ok()) return;
  auto checkpoint = spec->env.find("DLAB_CHECKPOINT_DIR");
  if (checkpoint == spec->env.end()) return;
  const std::string want_dir = absl::StrCat("DLAB_CHECKPOINT_DIR=", checkpoint->second);
  const std::string want_attempt = absl::StrCat("DLAB_ATTEMPT=", spec->attempt);
  // One scan can miss a process: while it is in the middle of an exec its environment reads
  // as empty, and a task may fork while the scan runs. So scan until two scans in a row, 20 ms
  // apart, find nothing (at most about 1 s; the killed are zombies or gone, and match no more).
  int quiet = 0;
  for (int scan = 0; scan < 50 && quiet < 2; ++scan) {
    if (scan > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    quiet = KillProcessesWithEnvironment(want_dir, want_attempt) == 0 ? quiet + 1 : 0;
  }
}

// Whether a supervisor holds the attempt's lock: the one liveness test, immune to pid reuse
// and to zombie shims (their files are already closed).
bool SupervisorAlive(const std::string& attempt_dir) {
  int fd = open(AttemptFile(attempt_dir, kLockFile).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);  // also releases the lock if this call took it
  return held;
}

// RAII owner of a posix_spawn attribute set and file actions.
class SpawnConfig final {
 public:
  SpawnConfig() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnConfig() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnConfig(const SpawnConfig&) = delete;
  SpawnConfig& operator=(const SpawnConfig&) = delete;

  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
};

// Spawns dlab-shim in its own session with the lock at fd 3, stdin from /dev/null and output to
// shim.log. Cancel signals stay blocked until the shim waits for them, so that none is lost.
absl::StatusOr<pid_t> SpawnShim(const std::string& shim_path, const std::string& attempt_dir,
                                int lock_fd) {
  SpawnConfig config;
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&blocked, sig);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setflags(&config.attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask(&config.attr, &blocked);
  posix_spawnattr_setsigdefault(&config.attr, &all);
  std::string shim_log = AttemptFile(attempt_dir, kShimLogFile);
  posix_spawn_file_actions_adddup2(&config.actions, lock_fd, kShimLockFd);
  posix_spawn_file_actions_addopen(&config.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&config.actions, STDOUT_FILENO, shim_log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&config.actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&config.actions, kShimLockFd + 1);

  std::string fd_arg = absl::StrCat(kShimLockFd);
  std::vector<char*> argv = {const_cast<char*>(shim_path.c_str()),
                             const_cast<char*>("--attempt-dir"),
                             const_cast<char*>(attempt_dir.c_str()),
                             const_cast<char*>("--lock-fd"),
                             fd_arg.data(),
                             nullptr};
  pid_t pid = 0;
  int err =
      posix_spawn(&pid, shim_path.c_str(), &config.actions, &config.attr, argv.data(), environ);
  if (err != 0) return ErrnoError(absl::StrCat("spawn ", shim_path), err);
  return pid;
}

// The pid in shim.pid, waiting briefly for a supervisor that has just been spawned.
absl::StatusOr<pid_t> ReadShimPid(const std::string& attempt_dir) {
  auto deadline = std::chrono::steady_clock::now() + kShimPidWait;
  for (;;) {
    absl::StatusOr<std::string> text = ReadFile(AttemptFile(attempt_dir, kShimPidFile));
    pid_t pid = 0;
    if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid) && pid > 0) {
      return pid;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::UnavailableError(absl::StrCat("no supervisor pid in ", attempt_dir));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

class LocalBackend final : public Backend {
 public:
  LocalBackend(LocalBackendOptions options, std::string socket_name, int socket_fd)
      : options_(std::move(options)),
        socket_name_(std::move(socket_name)),
        socket_fd_(socket_fd),
        thread_([this] { Loop(); }) {}

  ~LocalBackend() override {
    stop_ = true;
    thread_.join();
    close(socket_fd_);
  }

  LocalBackend(const LocalBackend&) = delete;
  LocalBackend& operator=(const LocalBackend&) = delete;

  absl::StatusOr<std::vector<BackendNode>> Inventory() override {
    return std::vector<BackendNode>{options_.node};
  }

  absl::Status Launch(const LaunchRequest& request) override {
    const std::string& dir = request.attempt_dir;
    if (absl::Status s = CheckLaunchRequest(request); !s.ok()) return s;
    std::string launch_file = AttemptFile(dir, kLaunchFile);
    // The lock is taken before launch.json appears, so that Inspect never sees a launched
    // attempt without a live lock holder unless its supervisor really died.
    int lock_fd = open(AttemptFile(dir, kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) return ErrnoError(absl::StrCat("open lock in ", dir), errno);
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      close(lock_fd);
      if (err == EWOULDBLOCK) {
        return absl::AlreadyExistsError(absl::StrCat("attempt ", dir, " is being launched"));
      }
      return ErrnoError(absl::StrCat("lock ", dir), err);
    }
    absl::Status written = WriteLaunchSpec(launch_file, ToLaunchSpec(request, socket_name_));
    if (!written.ok()) {
      close(lock_fd);
      return absl::InternalError(written.message());
    }
    absl::StatusOr<pid_t> pid = SpawnShim(options_.shim_path, dir, lock_fd);
    close(lock_fd);  // the shim's copy keeps the lock
    if (!pid.ok()) {
      unlink(launch_file.c_str());
      return pid.status();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      children_[*pid] = dir;
    }
    // Also written by the shim itself; here so that Cancel finds it right after Launch.
    (void)WriteFileAtomically(AttemptFile(dir, kShimPidFile), absl::StrCat(*pid, "\n"),
                              {.sync = false});
    return absl::OkStatus();
  }

  absl::StatusOr<AttemptStatus> Inspect(const std::string& attempt_dir) override {
    return ReadAttemptStatus(attempt_dir, [&] { return SupervisorAlive(attempt_dir); });
  }

  absl::Status Cancel(const std::string& attempt_dir) override {
    if (!FileExists(AttemptFile(attempt_dir, kLaunchFile))) {
      return absl::NotFoundError(absl::StrCat("attempt ", attempt_dir, " was never launched"));
    }
    if (!SupervisorAlive(attempt_dir)) {
      if (!FileExists(AttemptFile(attempt_dir, kExitFile))) KillLeftovers(attempt_dir);
      return absl::OkStatus();
    }
    absl::StatusOr<pid_t> pid = ReadShimPid(attempt_dir);
    if (!pid.ok()) return SupervisorAlive(attempt_dir) ? pid.status() : absl::OkStatus();
    // A pidfd taken while the lock is still held refers to the supervisor, not a reused pid.
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, *pid, 0));
    int rc = 0;
    if (SupervisorAlive(attempt_dir)) {
      rc = pidfd >= 0 ? static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0))
                      : kill(*pid, SIGTERM);
    }
    int err = errno;
    if (pidfd >= 0) close(pidfd);
    if (rc != 0 && err != ESRCH) return ErrnoError(absl::StrCat("cancel ", attempt_dir), err);
    return absl::OkStatus();
  }

  void SetListener(std::function<void(const std::string& attempt_dir)> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    listener_ = std::move(fn);
  }

 private:
  // Receives the shims' datagrams and reaps this process's own shims, until stopped.
  void Loop() {
    std::vector<char> buf(PATH_MAX + 1);
    while (!stop_) {
      pollfd pfd{.fd = socket_fd_, .events = POLLIN, .revents = 0};
      if (poll(&pfd, 1, kPollTimeoutMs) > 0 && (pfd.revents & POLLIN) != 0) {
        ssize_t n;
        while ((n = recv(socket_fd_, buf.data(), buf.size(), MSG_DONTWAIT)) > 0) {
          Notify(std::string(buf.data(), static_cast<size_t>(n)));
        }
      }
      for (const std::string& dir : ReapShims()) Notify(dir);
    }
  }

  // Only the pids this backend spawned: waitpid(-1) would steal other modules' children.
  std::vector<std::string> ReapShims() {
    std::vector<std::string> ended;
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = children_.begin(); it != children_.end();) {
      int status = 0;
      if (waitpid(it->first, &status, WNOHANG) != 0) {
        ended.push_back(it->second);
        it = children_.erase(it);
      } else {
        ++it;
      }
    }
    return ended;
  }

  void Notify(const std::string& attempt_dir) {
    std::function<void(const std::string&)> listener;
    {
      std::lock_guard<std::mutex> lock(mu_);
      listener = listener_;
    }
    if (listener) listener(attempt_dir);
  }

  const LocalBackendOptions options_;
  const std::string socket_name_;
  const int socket_fd_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<pid_t, std::string> children_ ABSL_GUARDED_BY(mu_);  // shim pid -> attempt_dir
  std::function<void(const std::string&)> listener_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: started once everything above is initialized
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> NewLocalBackend(LocalBackendOptions options) {
  if (access(options.shim_path.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("dlab-shim ", options.shim_path,
                                                   " is not executable: ", std::strerror(errno)));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  std::filesystem::path data_dir = std::filesystem::canonical(options.data_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("data dir ", options.data_dir, ": ", ec.message()));
  }
  options.data_dir = data_dir.string();
  std::string name = NotifySocketName(options.data_dir);

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoError("notification socket", errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    int err = errno;
    close(fd);
    if (err == EADDRINUSE) {
      return absl::FailedPreconditionError(
          absl::StrCat("another dlabd serves data dir ", options.data_dir));
    }
    return ErrnoError("bind notification socket", err);
  }
  return std::make_unique<LocalBackend>(std::move(options), std::move(name), fd);
}

}  // namespace dlab
