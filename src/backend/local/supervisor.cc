#include "backend/local/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/local/attempt_files.h"
#include "backend/local/cgroup.h"
#include "backend/local/slurm_steps.h"
#include "common/quantity.h"
#include "common/subprocess.h"
#include "common/tasks.h"

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
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

// launcher: what runs the task's argv (srun and its options), if anything.
ExecArgs BuildExecArgs(const LaunchSpec& spec, const TaskSpec& task,
                       std::vector<std::string> launcher) {
  std::map<std::string, std::string> env = ProcessEnvironment();
  for (const auto& [key, value] : spec.env) env[key] = value;
  for (const auto& [key, value] : task.env) env[key] = value;
  if (spec.slurm_steps) {
    // Slurm gives each step its own GPUs (CUDA_VISIBLE_DEVICES); a step without any sees none.
    env.erase("DLAB_GRANTED_GPUS");
    if (task.gpus.empty()) {
      env["CUDA_VISIBLE_DEVICES"] = "";
    } else {
      env.erase("CUDA_VISIBLE_DEVICES");
    }
  } else if (auto granted = env.find("DLAB_GRANTED_GPUS"); granted != env.end()) {
    // Under a cluster manager (the Slurm backend's batch script), the task's GPUs are
    // positions in the list of GPUs the manager granted the attempt.
    std::vector<std::string> ids = absl::StrSplit(granted->second, ',', absl::SkipEmpty());
    std::vector<std::string> mine;
    for (int g : task.gpus) {
      if (g >= 0 && static_cast<size_t>(g) < ids.size()) mine.push_back(ids[g]);
    }
    env.erase(granted);
    env["CUDA_VISIBLE_DEVICES"] = absl::StrJoin(mine, ",");
  } else {
    env["CUDA_VISIBLE_DEVICES"] = absl::StrJoin(task.gpus, ",");
  }

  ExecArgs args;
  for (const auto& [key, value] : env) args.env_storage.push_back(absl::StrCat(key, "=", value));
  for (std::string& entry : args.env_storage) args.envp.push_back(entry.data());
  args.envp.push_back(nullptr);
  args.argv_storage = std::move(launcher);
  args.argv_storage.insert(args.argv_storage.end(), task.argv.begin(), task.argv.end());
  for (std::string& arg : args.argv_storage) args.argv.push_back(arg.data());
  args.argv.push_back(nullptr);
  return args;
}

// In the forked child: only async-signal-safe calls until exec. out_fd >= 0: stdout and stderr
// go there (a pipe to the shim); otherwise to the task's log file.
[[noreturn]] void RunChild(const LaunchSpec& spec, const TaskSpec& task,
                           const AttemptCgroup& cgroup, ExecArgs& args, int error_fd, int out_fd) {
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
  int log = out_fd >= 0
                ? out_fd
                : open(task.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log < 0) fail(ChildError::kOpenLog);
  if (dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0) fail(ChildError::kOpenLog);
  if (chdir(spec.workdir.c_str()) != 0) fail(ChildError::kChdir);
  environ = args.envp.data();
  execvp(args.argv[0], args.argv.data());
  fail(ChildError::kExec);
  _exit(127);
}

std::string ChildErrorMessage(const LaunchSpec& spec, const TaskSpec& task,
                              const ChildError& error) {
  switch (error.stage) {
    case ChildError::kOpenLog:
      return absl::StrCat("open log ", task.log_path, ": ", std::strerror(error.err));
    case ChildError::kChdir:
      return absl::StrCat("chdir ", spec.workdir, ": ", std::strerror(error.err));
    case ChildError::kExec:
      break;
  }
  return absl::StrCat("exec ", task.argv[0], ": ", std::strerror(error.err));
}

void AppendToLog(const std::string& path, const std::string& line) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string text = line + "\n";
  (void)!write(fd, text.data(), text.size());
  close(fd);
}

constexpr size_t kMaxLine = 64 << 10;  // longer lines are split in the merged log

// One task of the attempt, as the supervisor tracks it.
struct Task {
  TaskSpec spec;
  std::unique_ptr<AttemptCgroup> cgroup;
  int64_t oom_kills_before = -1;
  pid_t pid = -1;
  std::optional<int> status;  // wait status once reaped
  int reaped_seq = 0;         // which Reap() batch found it ended
  bool signalled = false;     // the supervisor asked it to stop
  int out_fd = -1;            // read end of its output pipe (several tasks only)
  int log_fd = -1;            // its own log, written by the supervisor (several tasks only)
  std::string partial;        // an incomplete line not yet copied to the merged log
};

class Supervisor {
 public:
  Supervisor(const SupervisorOptions& options, LaunchSpec spec)
      : options_(options), spec_(std::move(spec)) {}

  ~Supervisor() {
    for (Task& t : tasks_) {
      if (t.out_fd >= 0) close(t.out_fd);
      if (t.log_fd >= 0) close(t.log_fd);
    }
    if (merged_fd_ >= 0) close(merged_fd_);
  }

  absl::Status Run() {
    if (spec_.tasks.empty()) return Finish(FailedStart("launch.json has no task"));
    bool gang = spec_.tasks.size() > 1;
    for (const TaskSpec& ts : spec_.tasks) {
      Task t{.spec = ts};
      // Named after the data dir's hash too: several dlabd instances may share a machine, and
      // job ids repeat between them.
      std::string name =
          absl::StrCat(spec_.notify_socket, "-job-", spec_.job_id, "-", spec_.attempt);
      if (gang) absl::StrAppend(&name, "-t", ts.rank);
      t.cgroup = AttemptCgroup::Create(
          name, {.cpu_millis = ts.cpu_millis, .memory_bytes = ts.memory_bytes},
          {.fs_root = options_.cgroup_root, .disabled = options_.disable_cgroups});
      if (ts.argv.empty()) {
        tasks_.push_back(std::move(t));
        return Finish(FailedStart(absl::StrCat("task ", ts.rank, " has an empty argv")));
      }
      tasks_.push_back(std::move(t));
    }
    if (gang) {
      merged_fd_ = open(spec_.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    }
    if (spec_.slurm_steps) {
      if (absl::Status placed = PlaceSteps(); !placed.ok()) {
        return Finish(FailedStart(std::string(placed.message())));
      }
    }
    for (Task& t : tasks_) {
      absl::Status started = Start(t);
      if (!started.ok()) {
        std::string message(started.message());
        StopAll(SIGKILL);
        WaitForAll();
        return Finish(FailedStart(message));
      }
    }
    StartedRecord started{.pid = tasks_[0].pid, .pgid = tasks_[0].pid, .start_time_ms = NowMs()};
    for (const Task& t : tasks_) started.task_pids.push_back(t.pid);
    started.limit_notes = Notes();
    absl::Status written =
        WriteStartedRecord(AttemptFile(options_.attempt_dir, kStartedFile), started);
    if (!written.ok()) std::fprintf(stderr, "dlab-shim: %s\n", written.ToString().c_str());
    SendNotification(spec_.notify_socket, options_.attempt_dir);
    Wait();
    return Finish(Describe());
  }

 private:
  std::vector<std::string> Notes() const {
    if (tasks_.size() == 1) return tasks_[0].cgroup->notes();
    std::vector<std::string> notes;
    for (const Task& t : tasks_) {
      for (const std::string& n : t.cgroup->notes()) {
        notes.push_back(absl::StrCat("task ", t.spec.rank, " ", n));
      }
    }
    return notes;
  }

  // Under Slurm (slurm_steps): the node of each task, and the environment contract that follows
  // from it. On one node the tasks reach each other at 127.0.0.1, as on the local backend.
  absl::Status PlaceSteps() {
    const char* nodelist = std::getenv("SLURM_JOB_NODELIST");
    const char* counts = std::getenv("SLURM_TASKS_PER_NODE");
    const char* job = std::getenv("SLURM_JOB_ID");
    if (nodelist == nullptr || counts == nullptr || job == nullptr) {
      return absl::FailedPreconditionError(
          "slurm steps: not inside a Slurm batch job (SLURM_JOB_ID, SLURM_JOB_NODELIST or "
          "SLURM_TASKS_PER_NODE unset)");
    }
    slurm_job_id_ = job;
    absl::StatusOr<std::vector<std::string>> hosts =
        SlurmRankHosts(nodelist, counts, static_cast<int>(tasks_.size()));
    if (!hosts.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("slurm steps: ", hosts.status().message()));
    }
    step_hosts_ = *hosts;
    const SlurmStepsSpec& steps = *spec_.slurm_steps;
    GangPlacement placement{.hosts = *hosts,
                            .master_port = steps.master_port,
                            .task_ports = steps.task_ports,
                            .hostfile = steps.hostfile};
    if (std::all_of(hosts->begin(), hosts->end(),
                    [&](const std::string& h) { return h == hosts->front(); })) {
      placement.hosts.assign(hosts->size(), "127.0.0.1");
    }
    std::vector<TaskInfo> infos;
    for (const Task& t : tasks_) {
      infos.push_back({.rank = t.spec.rank, .role = t.spec.role, .role_index = t.spec.role_index});
    }
    std::vector<std::map<std::string, std::string>> envs = TaskEnvironments(infos, placement);
    for (size_t r = 0; r < tasks_.size(); ++r) {
      envs[r].erase("CUDA_VISIBLE_DEVICES");  // Slurm's, per step
      for (auto& [key, value] : envs[r]) tasks_[r].spec.env[key] = std::move(value);
    }
    if (!steps.hostfile.empty()) {
      absl::Status written =
          WriteFileAtomically(steps.hostfile, HostfileText(placement.hosts), {.sync = false});
      if (!written.ok()) return written;
    }
    MergedNote(absl::StrCat("tasks run as Slurm steps of job ", slurm_job_id_, " on ",
                            absl::StrJoin(*hosts, " "), " (by rank)"));
    return absl::OkStatus();
  }

  // The wait status of a task: srun reports a task killed by signal N as exit status 128+N.
  int TaskWaitStatus(int status) const {
    return spec_.slurm_steps ? SrunWaitStatus(status) : status;
  }

  ExitRecord FailedStart(std::string message) {
    AppendToLog(spec_.log_path, message);
    return {.exit_code = 127, .end_reason = "exec_failed", .message = std::move(message)};
  }

  // Forks and execs one task in its own process group and cgroup.
  absl::Status Start(Task& t) {
    ExecArgs args = BuildExecArgs(
        spec_, t.spec,
        spec_.slurm_steps ? SrunCommand(*spec_.slurm_steps, t.spec, step_hosts_[t.spec.rank])
                          : std::vector<std::string>{});
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    }
    int out_fds[2] = {-1, -1};
    if (tasks_.size() > 1) {
      t.log_fd = open(t.spec.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
      if (t.log_fd < 0 || pipe2(out_fds, O_CLOEXEC) != 0) {
        int err = errno;
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return absl::InternalError(absl::StrCat("task ", t.spec.rank, ": open log ",
                                                t.spec.log_path, ": ", std::strerror(err)));
      }
      fcntl(out_fds[0], F_SETFL, O_NONBLOCK);
      t.out_fd = out_fds[0];
    }
    t.oom_kills_before = t.cgroup->OomKillCount();
    pid_t pid = fork();
    if (pid < 0) {
      int err = errno;
      close(pipe_fds[0]);
      close(pipe_fds[1]);
      if (out_fds[1] >= 0) close(out_fds[1]);
      return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
    }
    if (pid == 0) {
      close(pipe_fds[0]);
      RunChild(spec_, t.spec, *t.cgroup, args, pipe_fds[1], out_fds[1]);
    }
    close(pipe_fds[1]);
    if (out_fds[1] >= 0) close(out_fds[1]);
    setpgid(pid, pid);  // also here, so that kill(-pid) works however early a cancel comes
    t.pid = pid;
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
      t.status = status;
      std::string message = ChildErrorMessage(spec_, t.spec, error);
      if (tasks_.size() > 1) message = absl::StrCat("task ", t.spec.rank, ": ", message);
      return absl::InternalError(message);
    }
    return absl::OkStatus();
  }

  // Signals the process group of every task still running. Slurm steps: srun turns a SIGTERM
  // into killing its step, so SIGTERM goes to the tasks through scancel, and SIGKILL is that
  // SIGTERM to srun.
  void StopAll(int sig, bool auxiliary_only = false) {
    bool any = false;
    for (Task& t : tasks_) {
      if (t.pid <= 0 || t.status.has_value()) continue;
      if (auxiliary_only && !t.spec.auxiliary) continue;
      t.signalled = true;
      any = true;
      if (spec_.slurm_steps) {
        if (sig == SIGKILL) kill(-t.pid, SIGTERM);
        continue;
      }
      kill(-t.pid, sig);
      if (sig == SIGKILL) t.cgroup->KillAll();
    }
    if (any && spec_.slurm_steps && sig != SIGKILL) SignalSteps(sig);
  }

  // Sends sig to the tasks of every step of the job (only the tasks still running have steps;
  // the batch step, this shim, is not signalled).
  void SignalSteps(int sig) {
    std::vector<std::string> argv = {SlurmBinary(spec_.slurm_steps->bin_dir, "scancel"),
                                     absl::StrCat("--signal=", SignalName(sig).substr(3)),
                                     slurm_job_id_};
    absl::StatusOr<CommandResult> r = RunCommand(argv, {.timeout = absl::Seconds(10)});
    if (r.ok() && r->exit_code == 0) return;
    MergedNote(absl::StrCat(CommandText(argv), " failed (",
                            r.ok() ? absl::StripAsciiWhitespace(r->err) : r.status().message(),
                            "); stopping the steps through srun"));
    for (Task& t : tasks_) {
      if (t.signalled && t.pid > 0 && !t.status.has_value()) kill(-t.pid, SIGTERM);
    }
  }

  void WaitForAll() {
    for (Task& t : tasks_) {
      if (t.pid <= 0 || t.status.has_value()) continue;
      int status;
      while (waitpid(t.pid, &status, 0) < 0 && errno == EINTR) {
      }
      t.status = TaskWaitStatus(status);
    }
  }

  // Reaps every exited child (tasks, and orphans adopted as subreaper).
  void Reap() {
    int status = 0;
    pid_t pid;
    ++reap_seq_;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      for (Task& t : tasks_) {
        if (t.pid == pid) {
          t.status = TaskWaitStatus(status);
          t.reaped_seq = reap_seq_;
        }
      }
    }
  }

  bool AllReaped() const {
    for (const Task& t : tasks_) {
      if (!t.status.has_value()) return false;
    }
    return true;
  }

  static bool Failed(const Task& t) {
    return t.status.has_value() && !(WIFEXITED(*t.status) && WEXITSTATUS(*t.status) == 0);
  }

  // Starts stopping the gang: SIGTERM now, SIGKILL after the grace period.
  void BeginStop(absl::string_view reason, Clock::time_point now, bool auxiliary_only = false) {
    if (!stop_reason_.empty()) return;
    stop_reason_ = std::string(reason);
    StopAll(SIGTERM, auxiliary_only);
    kill_deadline_ = now + std::chrono::milliseconds(std::max<int64_t>(0, spec_.kill_grace_ms));
  }

  // After a task ended: a failed task stops the gang; successful main tasks stop the auxiliary.
  void CheckGang(Clock::time_point now) {
    if (!stop_reason_.empty()) return;
    // The root cause: the task that ended first; among those reaped together, one killed by a
    // signal (its peers typically fail a moment later because of it).
    const Task* first = nullptr;
    for (const Task& t : tasks_) {
      if (!Failed(t) || t.signalled) continue;
      auto key = [](const Task& x) {
        return std::make_pair(x.reaped_seq, WIFSIGNALED(*x.status) ? 0 : 1);
      };
      if (first == nullptr || key(t) < key(*first)) first = &t;
    }
    if (first != nullptr) {
      failed_rank_ = first->spec.rank;
      if (tasks_.size() > 1 && !AllReaped()) {
        MergedNote(absl::StrCat("task ", first->spec.rank, " ", How(*first),
                                "; stopping the other tasks"));
      }
      BeginStop("gang", now);
      return;
    }
    bool main_done = true;
    bool aux_running = false;
    for (const Task& t : tasks_) {
      if (!t.spec.auxiliary && !t.status.has_value()) main_done = false;
      if (t.spec.auxiliary && !t.status.has_value()) aux_running = true;
    }
    if (main_done && aux_running) BeginStop("completed", now, /*auxiliary_only=*/true);
  }

  // Copies a task's output to its log and, line by line with its rank, to the merged log.
  // Returns false at end of file.
  bool Forward(Task& t) {
    char buf[65536];
    while (true) {
      ssize_t n = read(t.out_fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno == EAGAIN;
      if (n == 0) {
        if (!t.partial.empty()) MergedLine(t, t.partial);
        t.partial.clear();
        return false;
      }
      (void)!write(t.log_fd, buf, n);
      t.partial.append(buf, n);
      size_t start = 0;
      size_t nl;
      while ((nl = t.partial.find('\n', start)) != std::string::npos) {
        MergedLine(t, absl::string_view(t.partial).substr(start, nl - start));
        start = nl + 1;
      }
      t.partial.erase(0, start);
      if (t.partial.size() > kMaxLine) {
        MergedLine(t, t.partial);
        t.partial.clear();
      }
    }
  }

  void MergedLine(const Task& t, absl::string_view line) {
    std::string text = absl::StrCat("[rank ", t.spec.rank, "] ", line, "\n");
    (void)!write(merged_fd_, text.data(), text.size());
  }

  void MergedNote(absl::string_view note) {
    if (merged_fd_ < 0) return;
    std::string text = absl::StrCat("[dlab] ", note, "\n");
    (void)!write(merged_fd_, text.data(), text.size());
  }

  // Waits for every task, forwarding output, enforcing cancel, max_runtime and the gang.
  void Wait() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT}) sigaddset(&set, sig);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    std::optional<Clock::time_point> runtime_deadline;
    if (spec_.max_runtime_ms > 0) {
      runtime_deadline = Clock::now() + std::chrono::milliseconds(spec_.max_runtime_ms);
    }
    std::optional<Clock::time_point> drain_deadline;
    Reap();
    CheckGang(Clock::now());
    while (true) {
      bool pipes_open = false;
      for (const Task& t : tasks_) pipes_open = pipes_open || t.out_fd >= 0;
      if (AllReaped() && !drain_deadline) {
        // Whatever the tasks left behind in their groups goes now; their pipes may still hold
        // output, read for up to a second more.
        for (Task& t : tasks_) {
          if (t.pid > 0) kill(-t.pid, SIGKILL);
          t.cgroup->KillAll();
        }
        Reap();
        drain_deadline = Clock::now() + std::chrono::seconds(1);
      }
      Clock::time_point now = Clock::now();
      if (AllReaped() && (!pipes_open || now >= *drain_deadline)) break;

      std::optional<Clock::time_point> next;
      for (const auto& d : {kill_deadline_, runtime_deadline, drain_deadline}) {
        if (d && (!next || *d < *next)) next = d;
      }
      int timeout_ms = -1;
      if (next) {
        timeout_ms = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(*next - now).count() + 1));
      }
      std::vector<pollfd> fds;
      fds.push_back({.fd = sfd, .events = POLLIN});
      std::vector<Task*> owners;
      for (Task& t : tasks_) {
        if (t.out_fd < 0) continue;
        fds.push_back({.fd = t.out_fd, .events = POLLIN});
        owners.push_back(&t);
      }
      int ready = poll(fds.data(), fds.size(), timeout_ms);
      now = Clock::now();
      if (ready > 0) {
        for (size_t i = 1; i < fds.size(); ++i) {
          if (fds[i].revents == 0) continue;
          Task& t = *owners[i - 1];
          if (!Forward(t)) {
            close(t.out_fd);
            t.out_fd = -1;
          }
        }
        if (fds[0].revents != 0) {
          signalfd_siginfo info;
          while (read(sfd, &info, sizeof(info)) == sizeof(info)) {
            if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) BeginStop("cancelled", now);
          }
          Reap();
        }
      }
      if (runtime_deadline && now >= *runtime_deadline) {
        runtime_deadline.reset();
        BeginStop("max_runtime", now);
      }
      if (kill_deadline_ && now >= *kill_deadline_) {
        kill_deadline_.reset();
        StopAll(SIGKILL);
      }
      CheckGang(now);
    }
    for (Task& t : tasks_) {
      if (t.out_fd >= 0) {
        Forward(t);
        if (!t.partial.empty()) MergedLine(t, t.partial);
        close(t.out_fd);
        t.out_fd = -1;
      }
    }
    if (sfd >= 0) close(sfd);
  }

  // How a task ended, for people: "exited with code 3", "killed by SIGKILL".
  std::string How(const Task& t) const {
    int status = *t.status;
    if (WIFSIGNALED(status)) return absl::StrCat("killed by ", SignalName(WTERMSIG(status)));
    return absl::StrCat("exited with code ", WEXITSTATUS(status));
  }

  TaskExit DescribeTask(const Task& t) const {
    TaskExit e{.rank = t.spec.rank, .end_reason = "exited"};
    if (!t.status) {
      e.end_reason = "exec_failed";
      return e;
    }
    int status = *t.status;
    if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      e.exit_code = 128 + sig;
      e.signal = SignalName(sig);
      int64_t oom_kills = t.cgroup->OomKillCount();
      if (sig == SIGKILL && t.oom_kills_before >= 0 && oom_kills > t.oom_kills_before &&
          !t.signalled) {
        e.end_reason = "oom_killed";
      }
    } else {
      e.exit_code = WEXITSTATUS(status);
    }
    if (t.signalled) {
      if (stop_reason_ == "cancelled" || stop_reason_ == "max_runtime") {
        e.end_reason = stop_reason_;
      } else {
        e.end_reason = "stopped";
      }
    }
    return e;
  }

  ExitRecord Describe() {
    ExitRecord record{.end_reason = "exited"};
    for (const Task& t : tasks_) record.tasks.push_back(DescribeTask(t));
    bool gang = tasks_.size() > 1;
    const Task* culprit = failed_rank_ >= 0 ? &tasks_[failed_rank_] : nullptr;
    if (culprit == nullptr && !gang) culprit = &tasks_[0];
    std::string how = "all tasks exited with code 0";
    if (culprit != nullptr) {
      const TaskExit& e = record.tasks[culprit->spec.rank];
      record.exit_code = e.exit_code;
      record.signal = e.signal;
      if (e.end_reason == "oom_killed") record.end_reason = "oom_killed";
      how = How(*culprit);
      if (e.end_reason == "oom_killed") {
        how = absl::StrCat("killed by the kernel OOM killer (memory limit ",
                           FormatMemoryBytes(culprit->spec.memory_bytes), ")");
      }
      if (gang) {
        how = absl::StrCat("task ", culprit->spec.rank, " ", how, "; the other tasks were stopped");
      }
      record.failed_rank = failed_rank_;
    } else if (stop_reason_ == "completed") {
      how = "every main task exited with code 0; the auxiliary tasks were stopped";
    } else if (stop_reason_ == "cancelled" || stop_reason_ == "max_runtime") {
      // A gang stopped as a whole: report rank 0.
      record.exit_code = record.tasks[0].exit_code;
      record.signal = record.tasks[0].signal;
      how = How(tasks_[0]);
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
  // cgroups and notifies dlabd.
  absl::Status Finish(ExitRecord record) {
    record.end_time_ms = NowMs();
    record.limit_notes = Notes();
    absl::Status written = WriteExitRecord(AttemptFile(options_.attempt_dir, kExitFile), record);
    for (Task& t : tasks_) t.cgroup->Remove();
    SendNotification(spec_.notify_socket, options_.attempt_dir);
    return written;
  }

  const SupervisorOptions& options_;
  const LaunchSpec spec_;
  std::vector<Task> tasks_;
  int merged_fd_ = -1;
  std::string slurm_job_id_;             // slurm_steps: the batch job's id
  std::vector<std::string> step_hosts_;  // slurm_steps: the node of each rank
  int failed_rank_ = -1;
  int reap_seq_ = 0;
  // "cancelled", "max_runtime", "gang" (a task failed) or "completed" (the main tasks
  // succeeded; auxiliary ones are being stopped) once stopping began.
  std::string stop_reason_;
  std::optional<Clock::time_point> kill_deadline_;
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
