#include "backend/slurm/slurm_backend.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "backend/local/attempt_files.h"
#include "backend/local/shim_attempt.h"
#include "backend/slurm/slurm_rest.h"
#include "common/file_util.h"
#include "common/subprocess.h"

namespace dlab {
namespace {

constexpr absl::string_view kJobIdFile = "slurm_job_id";       // the Slurm job id, decimal
constexpr absl::string_view kScriptFile = "slurm.sbatch";      // the batch script
constexpr absl::string_view kCancelFile = "cancel_requested";  // dlab asked to cancel it

std::optional<int64_t> ReadJobId(const std::string& attempt_dir) {
  absl::StatusOr<std::string> text = ReadFile(AttemptFile(attempt_dir, kJobIdFile));
  int64_t id = 0;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &id)) return std::nullopt;
  return id;
}

// A command's failure, with what it printed.
absl::Status CommandFailed(const std::vector<std::string>& argv, const CommandResult& r) {
  std::string said = std::string(absl::StripAsciiWhitespace(r.err.empty() ? r.out : r.err));
  return absl::UnavailableError(
      absl::StrCat(CommandText(argv), " failed (exit ", r.exit_code, "): ", said));
}

// The shim recorded an end by a signal that may have come from Slurm: it stopped the tasks on
// a SIGTERM to itself ("cancelled"), or a task was killed by a signal.
bool SignalledFromOutside(const AttemptStatus& status) {
  return status.end_reason == "cancelled" ||
         (status.end_reason == "exited" &&
          (status.signal == "SIGTERM" || status.signal == "SIGKILL"));
}

class SlurmBackend final : public Backend {
 public:
  SlurmBackend(SlurmBackendOptions options, std::string tag)
      : options_(std::move(options)),
        tag_(std::move(tag)),
        // dlabd's environment, for batch jobs submitted through slurmrestd (sbatch passes its
        // own).
        environment_(options_.slurm.rest_url.empty() ? std::map<std::string, std::string>()
                                                     : ProcessEnvironment()),
        thread_([this] { Loop(); }) {
    for (int i = 0; i < kSubmitters; ++i) submitters_.emplace_back([this] { SubmitLoop(); });
  }

  ~SlurmBackend() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    submit_cv_.notify_all();
    thread_.join();
    // Attempts not submitted yet stay so: a later dlabd finds them never submitted (lost).
    for (std::thread& t : submitters_) t.join();
  }

  absl::Status Launch(const LaunchRequest& request) override {
    const std::string& dir = request.attempt_dir;
    if (absl::Status s = CheckLaunchRequest(request); !s.ok()) return s;
    std::string launch_file = AttemptFile(dir, kLaunchFile);
    // Slurm grants the GPUs: a task's GPUs become positions in the list Slurm hands the job.
    LaunchRequest granted = request;
    int next = 0;
    for (TaskLaunch& t : granted.tasks) {
      for (int& g : t.allocation.gpus) g = next++;
    }
    LaunchSpec spec = ToLaunchSpec(granted, "");
    if (request.tasks.size() > 1) {  // one job step per task, on the nodes Slurm allocates
      spec.slurm_steps = SlurmStepsSpec{.bin_dir = options_.slurm.bin_dir,
                                        .gpu_type = request.gpu_type,
                                        .master_port = request.placement.master_port,
                                        .task_ports = request.placement.task_ports,
                                        .hostfile = request.placement.hostfile};
    }
    if (auto s = WriteLaunchSpec(launch_file, spec); !s.ok()) {
      return absl::InternalError(s.message());
    }
    std::string script = AttemptFile(dir, kScriptFile);
    std::string script_text = SlurmBatchScript(options_.shim_path, dir);
    if (auto s = WriteFileAtomically(script, script_text, {.sync = false}); !s.ok()) {
      unlink(launch_file.c_str());
      return absl::InternalError(s.message());
    }
    std::string name = SlurmJobName(tag_, request.job_id, request.attempt);
    Submission submission{.dir = dir};
    if (options_.slurm.rest_url.empty()) {
      submission.argv = SbatchCommand(request, options_.slurm, name, script);
    } else {
      submission.rest_body =
          SlurmRestSubmitBody(request, options_.slurm, name, script_text, environment_);
    }
    // sbatch takes tens of milliseconds: submitters run it, so that dlab's scheduler is not
    // held up and several submissions are in flight at once.
    {
      std::lock_guard<std::mutex> lock(mu_);
      submitting_.insert(dir);
      to_submit_.push_back(std::move(submission));
    }
    submit_cv_.notify_one();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<BackendNode>> Inventory() override {
    absl::StatusOr<std::vector<SlurmNode>> nodes = ListSlurmNodes(options_.slurm);
    if (!nodes.ok()) return nodes.status();
    std::vector<BackendNode> out;
    for (const SlurmNode& n : *nodes) {
      BackendNode node{.name = n.name,
                       .cpu_millis = int64_t{n.cpus} * 1000,
                       .memory_bytes = n.memory_mb << 20,
                       .cpu_millis_used = int64_t{n.cpus_alloc} * 1000,
                       .memory_bytes_used = n.alloc_mem_mb << 20,
                       .state = n.state};
      for (int i = 0; i < n.gpus; ++i) node.gpus.push_back({i, n.gpu_type, n.gpu_type});
      out.push_back(std::move(node));
    }
    return out;
  }

  absl::StatusOr<AttemptStatus> Inspect(const std::string& attempt_dir) override {
    std::optional<int64_t> id = ReadJobId(attempt_dir);
    if (!id && !Submitting(attempt_dir)) id = FindByName(attempt_dir);
    std::string state;
    bool known = false;
    auto alive = [&] {
      if (Submitting(attempt_dir)) return true;
      if (!id) return false;
      auto s = JobState(*id);
      if (!s.ok()) return true;  // Slurm does not answer: nothing is known to have ended
      state = *s;
      known = true;
      return InterpretSlurmState(state).active;
    };
    absl::StatusOr<AttemptStatus> status = ReadAttemptStatus(attempt_dir, alive);
    if (!status.ok()) return status;
    if (status->phase == AttemptPhase::kLost) {
      if (FileExists(AttemptFile(attempt_dir, kCancelFile))) {
        // Cancelled before the shim could record anything (e.g. while pending).
        status->phase = AttemptPhase::kExited;
        status->exit_code = 128 + 15;
        status->signal = "SIGTERM";
        status->end_reason = "cancelled";
        status->message = "cancelled before it started";
        status->end_time = absl::Now();
      } else if (!id) {
        status->message = "the attempt was never submitted to Slurm";
      } else if (known) {
        status->message = InterpretSlurmState(state).lost;
      }
    } else if (status->phase == AttemptPhase::kExited && SignalledFromOutside(*status) &&
               !FileExists(AttemptFile(attempt_dir, kCancelFile)) && id) {
      // A signal dlab did not send: Slurm's (a node failure, the time limit, a preemption), an
      // operator's scancel, or something else on the node. Slurm's verdict says which: until it
      // has one, the attempt is reported as still running.
      absl::StatusOr<std::string> s = JobState(*id);
      SlurmStateMeaning meaning = InterpretSlurmState(s.ok() ? *s : "RUNNING");
      if (meaning.active) {
        status->phase = AttemptPhase::kRunning;
        Track(attempt_dir, *id);
        return status;
      }
      if (meaning.stopped_by_slurm) {
        status->end_reason = "lost";
        status->message = meaning.lost;
      } else if (status->end_reason == "cancelled") {  // not the user's cancel
        status->end_reason = "lost";
        status->message = "the batch job was stopped by a SIGTERM from outside dlab";
      }
    } else if (status->phase != AttemptPhase::kExited && id) {
      Track(attempt_dir, *id);
    }
    return status;
  }

  absl::Status Cancel(const std::string& attempt_dir) override {
    if (!FileExists(AttemptFile(attempt_dir, kLaunchFile))) {
      return absl::NotFoundError(absl::StrCat("attempt ", attempt_dir, " was never launched"));
    }
    if (FileExists(AttemptFile(attempt_dir, kExitFile))) return absl::OkStatus();
    (void)WriteFileAtomically(AttemptFile(attempt_dir, kCancelFile), "", {.sync = false});
    {
      // Not submitted yet: it never will be (a submission in flight is cancelled by its
      // submitter, which sees the cancel file once sbatch returns).
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = to_submit_.begin(); it != to_submit_.end(); ++it) {
        if (it->dir == attempt_dir) {
          to_submit_.erase(it);
          submitting_.erase(attempt_dir);
          break;
        }
      }
      if (submitting_.contains(attempt_dir)) return absl::OkStatus();
    }
    std::optional<int64_t> id = ReadJobId(attempt_dir);
    if (!id) id = FindByName(attempt_dir);
    if (!id) {
      NotifyListener(attempt_dir);
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> state = JobState(*id);
    if (!state.ok()) return state.status();
    SlurmStateMeaning meaning = InterpretSlurmState(*state);
    std::vector<std::string> argv = {SlurmProgram(options_.slurm, "scancel")};
    if (meaning.active && !meaning.pending) {
      // The batch script is the shim (exec): it stops the tasks with SIGTERM, waits kill_grace,
      // SIGKILLs what is left and records the end.
      argv.insert(argv.end(), {"--batch", "--signal=TERM"});
    }
    argv.push_back(absl::StrCat(*id));
    absl::StatusOr<CommandResult> r = Run(argv);
    if (!r.ok()) return r.status();
    // A job that has just ended is not an error.
    if (r->exit_code != 0 && r->err.find("already completed") == std::string::npos &&
        r->err.find("Invalid job id") == std::string::npos) {
      return CommandFailed(argv, *r);
    }
    Track(attempt_dir, *id);
    return absl::OkStatus();
  }

  void SetListener(std::function<void(const std::string& attempt_dir)> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    listener_ = std::move(fn);
  }

 private:
  static constexpr int kSubmitters = 4;

  struct Submission {
    std::string dir;
    std::vector<std::string> argv;  // sbatch's; or
    std::string rest_body;          // slurmrestd's
  };

  bool Submitting(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    return submitting_.contains(dir);
  }

  void NotifyListener(const std::string& dir) {
    std::function<void(const std::string&)> listener;
    {
      std::lock_guard<std::mutex> lock(mu_);
      listener = listener_;
    }
    if (listener) listener(dir);
  }

  // Runs sbatch (or asks slurmrestd) for queued attempts; records the job id, or the failure
  // as the attempt's end.
  void SubmitLoop() {
    std::unique_ptr<SlurmRestClient> rest;  // this thread's connection
    if (!options_.slurm.rest_url.empty()) {
      rest = std::make_unique<SlurmRestClient>(options_.slurm, options_.command_timeout);
    }
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      submit_cv_.wait(lock, [this] { return stop_ || !to_submit_.empty(); });
      if (stop_) return;
      Submission next = std::move(to_submit_.front());
      to_submit_.pop_front();
      lock.unlock();
      const std::string& dir = next.dir;
      absl::StatusOr<int64_t> id = rest ? rest->Submit(next.rest_body) : Submit(next.argv);
      absl::Status recorded = id.status();
      if (id.ok()) {
        // Not synced: were it lost in a crash, FindByName finds the job by its name.
        recorded = WriteFileAtomically(AttemptFile(dir, kJobIdFile), absl::StrCat(*id, "\n"),
                                       {.sync = false});
        if (!recorded.ok()) {
          // Without the id nothing could find the job again: take it back.
          Run({SlurmProgram(options_.slurm, "scancel"), absl::StrCat(*id)}).IgnoreError();
        }
      }
      if (!recorded.ok()) {
        (void)WriteExitRecord(
            AttemptFile(dir, kExitFile),
            {.exit_code = 127,
             .end_reason = "launch_failed",
             .message = absl::StrCat("cannot submit the attempt to Slurm: ", recorded.message()),
             .end_time_ms = absl::ToUnixMillis(absl::Now())});
      }
      lock.lock();
      submitting_.erase(dir);
      lock.unlock();
      if (recorded.ok()) {
        Track(dir, *id);
        if (FileExists(AttemptFile(dir, kCancelFile))) Cancel(dir).IgnoreError();
      } else {
        NotifyListener(dir);
      }
      lock.lock();
    }
  }

  struct Watched {
    int64_t job_id = 0;
    std::tuple<bool, bool, std::string> seen;  // started, exited, Slurm state
    absl::Time tracked_at;                     // when it joined the poll
  };

  absl::StatusOr<CommandResult> Run(const std::vector<std::string>& argv) {
    return RunCommand(argv, {.timeout = options_.command_timeout});
  }

  // The job of an attempt whose id was never written (dlabd died right after sbatch), found by
  // its name; written down when found.
  std::optional<int64_t> FindByName(const std::string& attempt_dir) {
    absl::StatusOr<LaunchSpec> spec = ReadLaunchSpec(AttemptFile(attempt_dir, kLaunchFile));
    if (!spec.ok()) return std::nullopt;
    std::vector<std::string> argv = {
        SlurmProgram(options_.slurm, "squeue"), "--noheader", "--states=all", "--format=%i %T",
        absl::StrCat("--name=", SlurmJobName(tag_, spec->job_id, spec->attempt))};
    absl::StatusOr<CommandResult> r = Run(argv);
    if (!r.ok() || r->exit_code != 0) return std::nullopt;
    auto states = ParseSqueueStates(r->out);
    if (states.empty()) return std::nullopt;
    int64_t id = states.front().first;
    (void)WriteFileAtomically(AttemptFile(attempt_dir, kJobIdFile), absl::StrCat(id, "\n"));
    return id;
  }

  absl::StatusOr<int64_t> Submit(const std::vector<std::string>& argv) {
    absl::StatusOr<CommandResult> r = Run(argv);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) return CommandFailed(argv, *r);
    return ParseSbatchJobId(r->out);
  }

  // The job's state: from the last poll when it saw the job, else asked now. "" when Slurm no
  // longer knows the job; an error when Slurm does not answer.
  absl::StatusOr<std::string> JobState(int64_t id) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const bool fresh = absl::Now() - polled_at_ < 2 * options_.poll_interval;
      auto it = polled_.find(id);
      if (it != polled_.end() && fresh) return it->second;
      // Submitted since the last poll: the next one asks about it. Asking now as well cost a
      // squeue per job (500 trivial jobs: as many squeue as sbatch runs).
      if (fresh) {
        for (const auto& [dir, w] : watched_) {
          if (w.job_id == id && w.tracked_at > polled_at_) return std::string("PENDING");
        }
      }
    }
    absl::StatusOr<std::map<int64_t, std::string>> states = Squeue({id});
    if (!states.ok()) return states.status();
    auto it = states->find(id);
    return it == states->end() ? std::string() : it->second;
  }

  // States of the jobs Slurm still knows among ids (finished jobs stay for MinJobAge).
  absl::StatusOr<std::map<int64_t, std::string>> Squeue(const std::set<int64_t>& ids) {
    std::vector<std::string> argv = {SlurmProgram(options_.slurm, "squeue"), "--noheader",
                                     "--states=all", "--format=%i %T",
                                     absl::StrCat("--jobs=", absl::StrJoin(ids, ","))};
    absl::StatusOr<CommandResult> r = Run(argv);
    if (!r.ok()) return r.status();
    std::map<int64_t, std::string> out;
    if (r->exit_code != 0) {
      // Every id unknown to Slurm: an answer, not a failure.
      if (r->err.find("Invalid job id") != std::string::npos) return out;
      return CommandFailed(argv, *r);
    }
    for (auto& [id, state] : ParseSqueueStates(r->out)) out[id] = std::move(state);
    return out;
  }

  void Track(const std::string& dir, int64_t id) {
    bool first;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The poll loop idles while nothing is watched: wake it for the first job. Later ones
      // wait for its next round (waking it for each was a squeue per submitted job).
      first = watched_.empty();
      if (first) wake_ = true;
      watched_.try_emplace(dir, Watched{.job_id = id, .tracked_at = absl::Now()});
    }
    if (first) cv_.notify_all();
  }

  // Polls the attempts in flight: files and squeue, and tells the listener of every change.
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      // Only a stop or the first job cuts the wait short (a launch does not).
      cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.poll_interval),
                   [this] { return stop_ || wake_; });
      if (stop_) break;
      wake_ = false;
      if (watched_.empty()) continue;
      std::set<int64_t> ids;
      for (const auto& [dir, w] : watched_) ids.insert(w.job_id);
      // The answer is as of now: a job tracked from here on is newer than the poll (JobState).
      const absl::Time asked = absl::Now();
      lock.unlock();
      absl::StatusOr<std::map<int64_t, std::string>> states = Squeue(ids);
      lock.lock();
      if (!states.ok()) continue;  // Slurm is not answering: try again later
      polled_ = *states;
      polled_at_ = asked;
      std::vector<std::string> changed;
      for (auto it = watched_.begin(); it != watched_.end();) {
        if (!ids.contains(it->second.job_id)) {
          // Tracked while squeue ran, so not asked about: absent from its answer is not ended.
          ++it;
          continue;
        }
        auto found = polled_.find(it->second.job_id);
        std::string state = found == polled_.end() ? "" : found->second;
        bool exited = FileExists(AttemptFile(it->first, kExitFile));
        std::tuple<bool, bool, std::string> seen = {
            FileExists(AttemptFile(it->first, kStartedFile)), exited, state};
        if (seen != it->second.seen) {
          it->second.seen = seen;
          changed.push_back(it->first);
        }
        // Done once Slurm has ended the job (an end the shim recorded is final only then).
        if (!InterpretSlurmState(state).active) {
          it = watched_.erase(it);
        } else {
          ++it;
        }
      }
      std::function<void(const std::string&)> listener = listener_;
      lock.unlock();
      if (listener) {
        for (const std::string& dir : changed) listener(dir);
      }
      lock.lock();
    }
  }

  const SlurmBackendOptions options_;
  const std::string tag_;  // in every job name: this dlabd's jobs (see SlurmJobName)
  const std::map<std::string, std::string> environment_;  // for slurmrestd submissions
  std::mutex mu_;
  std::condition_variable cv_;              // the poll loop's: stop_, wake_
  std::condition_variable submit_cv_;       // the submitters': stop_, to_submit_
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // poll now: the first job to watch
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Watched> watched_ ABSL_GUARDED_BY(mu_);  // attempt dir -> its job
  std::map<int64_t, std::string> polled_ ABSL_GUARDED_BY(mu_);   // job -> state, last poll
  absl::Time polled_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::function<void(const std::string&)> listener_ ABSL_GUARDED_BY(mu_);
  std::deque<Submission> to_submit_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> submitting_ ABSL_GUARDED_BY(mu_);  // queued or in sbatch
  std::vector<std::thread> submitters_;
  std::thread thread_;  // last: started once everything above is initialized
};

}  // namespace

absl::StatusOr<std::vector<SlurmNode>> ListSlurmNodes(const SlurmOptions& options) {
  std::vector<std::string> argv = {SlurmProgram(options, "scontrol"), "--oneliner", "show", "node"};
  absl::StatusOr<CommandResult> r = RunCommand(argv);
  if (!r.ok()) return absl::UnavailableError(r.status().message());
  if (r->exit_code != 0) return CommandFailed(argv, *r);
  absl::StatusOr<std::vector<SlurmNode>> nodes = ParseSlurmNodes(r->out);
  if (!nodes.ok() || options.partition.empty()) return nodes;
  std::vector<SlurmNode> in_partition;
  for (SlurmNode& n : *nodes) {
    if (std::find(n.partitions.begin(), n.partitions.end(), options.partition) !=
        n.partitions.end()) {
      in_partition.push_back(std::move(n));
    }
  }
  return in_partition;
}

absl::StatusOr<std::unique_ptr<Backend>> NewSlurmBackend(SlurmBackendOptions options) {
  if (access(options.shim_path.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dlab-shim ", options.shim_path, " is not executable"));
  }
  std::vector<std::string> ping = {SlurmProgram(options.slurm, "scontrol"), "ping"};
  absl::StatusOr<CommandResult> r = RunCommand(ping, {.timeout = options.command_timeout});
  if (!r.ok()) return absl::UnavailableError(absl::StrCat("slurm: ", r.status().message()));
  if (r->exit_code != 0 || r->out.find("UP") == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("slurm: slurmctld does not answer (",
                                               CommandText(ping),
                                               "): ", absl::StripAsciiWhitespace(r->out + r->err)));
  }
  if (!options.slurm.rest_url.empty()) {  // (its form is checked with the configuration)
    SlurmRestClient rest(options.slurm, options.command_timeout);
    if (absl::Status s = rest.Ping(); !s.ok()) return s;
  }
  std::error_code ec;
  std::filesystem::path data_dir = std::filesystem::weakly_canonical(options.data_dir, ec);
  std::string tag = NotifySocketName(data_dir.string()).substr(5, 8);  // after "dlab-"
  return std::make_unique<SlurmBackend>(std::move(options), std::move(tag));
}

}  // namespace dlab
