#include "sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <queue>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sim/cluster_spec.h"

namespace dlab::sim {
namespace {

enum class Phase { kPending, kQueued, kRunning, kDone };

struct JobState {
  Phase phase = Phase::kPending;
  double remaining_s = 0;  // work left, restart costs not included
  double attempt_start_s = 0;
  double attempt_overhead_s = 0;  // the restart cost this attempt pays before making progress
  bool resumed = false;           // was preempted: its next attempt pays the restart cost
  int epoch = 0;                  // attempts started; older completions are stale
};

struct Completion {
  double time_s = 0;
  size_t job = 0;
  int epoch = 0;
  // Earliest first, ties by job order: the greater one pops later.
  bool operator>(const Completion& o) const {
    return std::pair(time_s, job) > std::pair(o.time_s, o.job);
  }
};

// Times the scheduler's calls, so that the report can tell its cost from the simulator's.
class StopWatch {
 public:
  explicit StopWatch(double* total_s) : total_s_(total_s), start_(Clock::now()) {}
  ~StopWatch() { *total_s_ += std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  double* total_s_;
  Clock::time_point start_;
};

std::vector<double> WeightsByIndex(const Workload& workload, const SimOptions& options) {
  std::vector<double> weights(workload.tenants.size(), 1.0);
  for (const auto& [tenant, weight] : options.tenant_weights) {
    if (tenant >= 1 && static_cast<size_t>(tenant) <= weights.size()) weights[tenant - 1] = weight;
  }
  return weights;
}

class Simulation {
 public:
  Simulation(const Workload& workload, Scheduler& scheduler, const SimOptions& options)
      : workload_(workload),
        scheduler_(scheduler),
        options_(options),
        cluster_gpus_(TotalGpus(scheduler.nodes())),
        jobs_(workload.jobs.size()),
        fairness_(cluster_gpus_, WeightsByIndex(workload, options), options.fairness_grace_s) {
    result_.jobs.resize(workload.jobs.size());
    for (size_t i = 0; i < jobs_.size(); ++i) jobs_[i].remaining_s = workload.jobs[i].duration_s;
  }

  absl::StatusOr<SimResult> Run() {
    if (!options_.tenant_weights.empty()) scheduler_.SetTenantWeights(options_.tenant_weights);
    std::optional<double> next_change;
    while (std::optional<double> t = NextEvent(next_change)) {
      AdvanceTo(*t);
      Complete(*t);
      Arrive(*t);
      int64_t started = 0;
      if (absl::Status s = RunCycles(*t, &started); !s.ok()) return s;
      RecordBusy(*t);
      ++result_.instants;
      if (running_ == 0 && next_arrival_ == jobs_.size() && started == 0) break;  // stuck or done
      next_change = TimedNextChange(*t);
    }
    Finish();
    return std::move(result_);
  }

 private:
  // The earliest of the next arrival, the next (live) completion and the scheduler's next change.
  std::optional<double> NextEvent(std::optional<double> next_change) {
    while (!completions_.empty() &&
           completions_.top().epoch != jobs_[completions_.top().job].epoch) {
      completions_.pop();
    }
    double t = std::numeric_limits<double>::infinity();
    if (next_arrival_ < jobs_.size()) t = workload_.jobs[next_arrival_].request.submit_s;
    if (!completions_.empty()) t = std::min(t, completions_.top().time_s);
    if (next_change) t = std::min(t, *next_change);
    if (t == std::numeric_limits<double>::infinity()) return std::nullopt;
    return t;
  }

  std::optional<double> TimedNextChange(double t) {
    StopWatch watch(&result_.scheduler_wall_s);
    std::optional<double> next = scheduler_.NextChange(t);
    if (next && *next <= t) return std::nullopt;  // not after now: nothing new to look at
    return next;
  }

  void AdvanceTo(double t) {
    result_.busy_gpu_s += static_cast<double>(busy_gpus_) * (t - now_s_);
    now_s_ = t;
    fairness_.AdvanceTo(t);
  }

  void Complete(double t) {
    while (!completions_.empty() && completions_.top().time_s <= t) {
      Completion done = completions_.top();
      completions_.pop();
      JobState& job = jobs_[done.job];
      if (done.epoch != job.epoch) continue;
      {
        StopWatch watch(&result_.scheduler_wall_s);
        scheduler_.Remove(workload_.jobs[done.job].request.id, t, /*ended=*/true);
      }
      job.phase = Phase::kDone;
      result_.jobs[done.job].end_s = t;
      result_.makespan_s = t;
      Release(done.job);
    }
  }

  void Arrive(double t) {
    while (next_arrival_ < jobs_.size() && workload_.jobs[next_arrival_].request.submit_s <= t) {
      const SimJob& job = workload_.jobs[next_arrival_];
      {
        StopWatch watch(&result_.scheduler_wall_s);
        scheduler_.Enqueue(job.request, t);
      }
      jobs_[next_arrival_].phase = Phase::kQueued;
      fairness_.AddQueued(job.request.tenant_id, job.gpus);
      ++next_arrival_;
    }
  }

  // Cycles at t until one preempts nothing: preempted jobs free their GPUs at once (Requeue), so
  // the next cycle can start the jobs they made room for.
  absl::Status RunCycles(double t, int64_t* started) {
    for (int i = 0; i < options_.max_cycles_per_instant; ++i) {
      CycleResult cycle;
      {
        StopWatch watch(&result_.scheduler_wall_s);
        cycle = scheduler_.Schedule(t, /*explain=*/false);
      }
      ++result_.cycles;
      for (const StartDecision& start : cycle.start) {
        if (absl::Status s = Start(start, t); !s.ok()) return s;
      }
      for (const PreemptDecision& preempt : cycle.preempt) {
        if (absl::Status s = Preempt(preempt, t); !s.ok()) return s;
      }
      *started += static_cast<int64_t>(cycle.start.size());
      if (cycle.preempt.empty()) return absl::OkStatus();
    }
    return absl::InternalError(absl::StrCat("the scheduler preempted jobs in each of ",
                                            options_.max_cycles_per_instant, " cycles at t=", t,
                                            " s"));
  }

  // The job's index, or Internal when the decision (e.g. "preempt job 2 for job 7") names a
  // job that is not in `phase`.
  absl::StatusOr<size_t> JobIn(int64_t id, Phase phase, const std::string& decision) const {
    size_t index = static_cast<size_t>(id - 1);
    if (id >= 1 && index < jobs_.size() && jobs_[index].phase == phase) return index;
    return absl::InternalError(absl::StrCat("the scheduler decided to ", decision, " at t=", now_s_,
                                            " s, but that job is not ",
                                            phase == Phase::kQueued ? "queued" : "running"));
  }

  absl::Status Start(const StartDecision& start, double t) {
    absl::StatusOr<size_t> index =
        JobIn(start.job_id, Phase::kQueued, absl::StrCat("start job ", start.job_id));
    if (!index.ok()) return index.status();
    JobState& job = jobs_[*index];
    job.phase = Phase::kRunning;
    job.attempt_start_s = t;
    job.attempt_overhead_s = job.resumed ? options_.restart_cost_s : 0;
    ++job.epoch;
    completions_.push({t + job.attempt_overhead_s + job.remaining_s, *index, job.epoch});
    JobOutcome& outcome = result_.jobs[*index];
    if (!outcome.first_start_s) outcome.first_start_s = t;
    const SimJob& sim = workload_.jobs[*index];
    busy_gpus_ += sim.gpus;
    ++running_;
    fairness_.AddQueued(sim.request.tenant_id, -sim.gpus);
    fairness_.AddHeld(sim.request.tenant_id, sim.gpus);
    return absl::OkStatus();
  }

  absl::Status Preempt(const PreemptDecision& preempt, double t) {
    absl::StatusOr<size_t> index =
        JobIn(preempt.job_id, Phase::kRunning,
              absl::StrCat("preempt job ", preempt.job_id, " for job ", preempt.for_job));
    if (!index.ok()) return index.status();
    JobState& job = jobs_[*index];
    double progress = std::max(0.0, t - job.attempt_start_s - job.attempt_overhead_s);
    job.remaining_s = std::max(0.0, job.remaining_s - progress);
    job.resumed = true;
    job.phase = Phase::kQueued;
    ++job.epoch;  // its completion is stale now
    {
      StopWatch watch(&result_.scheduler_wall_s);
      scheduler_.Requeue(preempt.job_id, t);
      // Requeue counts the whole attempt as progress; the restart cost was not.
      scheduler_.SetOracleRemaining(preempt.job_id, job.remaining_s);
    }
    ++result_.jobs[*index].preemptions;
    ++result_.preemptions;
    Release(*index);
    fairness_.AddQueued(workload_.jobs[*index].request.tenant_id, workload_.jobs[*index].gpus);
    return absl::OkStatus();
  }

  // A running job gave its GPUs back (it ended or was preempted).
  void Release(size_t index) {
    const SimJob& sim = workload_.jobs[index];
    busy_gpus_ -= sim.gpus;
    --running_;
    fairness_.AddHeld(sim.request.tenant_id, -sim.gpus);
  }

  // The busy GPUs from t on, as a step of the utilization curve.
  void RecordBusy(double t) {
    if (!busy_steps_.empty() && busy_steps_.back().second == busy_gpus_) return;
    if (!busy_steps_.empty() && busy_steps_.back().first == t) {
      busy_steps_.back().second = busy_gpus_;
    } else {
      busy_steps_.emplace_back(t, busy_gpus_);
    }
  }

  void Finish() {
    for (const JobState& job : jobs_) result_.unfinished += job.phase != Phase::kDone;
    result_.tenants = fairness_.Result();
    result_.utilization_over_time = UtilizationBuckets();
  }

  std::vector<double> UtilizationBuckets() const {
    int buckets = options_.utilization_buckets;
    double span = result_.makespan_s;
    if (buckets <= 0 || span <= 0 || cluster_gpus_ == 0) return {};
    std::vector<double> out(buckets, 0);
    double width = span / buckets;
    // Each step [from, to) adds its busy GPU-seconds to the buckets it overlaps.
    for (size_t i = 0; i < busy_steps_.size(); ++i) {
      double from = busy_steps_[i].first;
      double to = i + 1 < busy_steps_.size() ? busy_steps_[i + 1].first : span;
      to = std::min(to, span);
      for (int b = std::min(buckets - 1, static_cast<int>(from / width)); from < to; ++b) {
        double end = b == buckets - 1 ? to : std::max(from, std::min(to, (b + 1) * width));
        out[b] += static_cast<double>(busy_steps_[i].second) * (end - from);
        from = end;
      }
    }
    for (double& v : out) v /= width * cluster_gpus_;
    return out;
  }

  const Workload& workload_;
  Scheduler& scheduler_;
  const SimOptions& options_;
  int cluster_gpus_;
  std::vector<JobState> jobs_;
  FairnessMeter fairness_;
  SimResult result_;
  std::priority_queue<Completion, std::vector<Completion>, std::greater<>> completions_;
  size_t next_arrival_ = 0;
  double now_s_ = 0;
  int64_t busy_gpus_ = 0;
  int64_t running_ = 0;
  std::vector<std::pair<double, int64_t>> busy_steps_;  // (from, busy GPUs)
};

}  // namespace

absl::StatusOr<SimResult> Simulate(const Workload& workload, Scheduler& scheduler,
                                   const SimOptions& options) {
  return Simulation(workload, scheduler, options).Run();
}

}  // namespace dlab::sim
