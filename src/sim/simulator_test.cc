// Simulations small enough to work out by hand, through the real scheduler (NewScheduler).
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include "sim/cluster_spec.h"
#include "sim/report.h"

namespace dlab::sim {
namespace {

struct Run {
  Workload workload;
  SimResult result;
  Summary summary;
  std::vector<double> starts, ends;  // by job, -1 when none
};

struct RunOptions {
  std::string cluster = "1x4";
  std::string policy = "fifo";
  double restart_cost_s = 0;
};

absl::StatusOr<Run> Replay(const std::string& csv, const RunOptions& o) {
  absl::StatusOr<Trace> trace = ParseTrace(csv, "t.csv");
  if (!trace.ok()) return trace.status();
  absl::StatusOr<std::vector<NodeCapacity>> nodes = ParseCluster(o.cluster);
  if (!nodes.ok()) return nodes.status();
  Run run{.workload = BuildWorkload(trace->jobs, *nodes)};
  auto scheduler = NewScheduler({.policy = o.policy}, *nodes);
  if (!scheduler.ok()) return scheduler.status();
  auto result = Simulate(run.workload, **scheduler, {.restart_cost_s = o.restart_cost_s});
  if (!result.ok()) return result.status();
  run.result = *std::move(result);
  run.summary = Summarize(run.workload, run.result, TotalGpus(*nodes));
  for (const JobOutcome& job : run.result.jobs) {
    run.starts.push_back(job.first_start_s.value_or(-1));
    run.ends.push_back(job.end_s.value_or(-1));
  }
  return run;
}

using Times = std::vector<double>;

TEST(SimulatorTest, FifoOnOnePoolIsTextbookFifo) {
  // One pool of 4 GPUs. A (0 s, 4 GPUs, 100 s) runs 0-100; B (10 s, 2, 50 s) and C (20 s, 2,
  // 30 s) wait for it and start together at 100: B ends 150, C 130.
  // JCT: A 100, B 140, C 110; average 350/3; nearest-rank p50 = 2nd of (100, 110, 140) = 110,
  // p99 = 3rd = 140. Queueing: 0, 90, 80; average 170/3. Makespan 150.
  // Busy GPU-seconds: 4*100 + 2*50 + 2*30 = 560 of 4*150 = 600: utilization 14/15.
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s\n"
      "A,0,4,100\nB,10,2,50\nC,20,2,30\n",
      {});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->starts, (Times{0, 100, 100}));
  EXPECT_EQ(run->ends, (Times{100, 150, 130}));
  const Summary& s = run->summary;
  EXPECT_EQ(s.jobs, 3);
  EXPECT_EQ(s.finished, 3);
  EXPECT_DOUBLE_EQ(s.avg_jct_s, 350.0 / 3);
  EXPECT_EQ(s.p50_jct_s, 110);
  EXPECT_EQ(s.p99_jct_s, 140);
  EXPECT_DOUBLE_EQ(s.avg_queue_s, 170.0 / 3);
  EXPECT_EQ(s.makespan_s, 150);
  EXPECT_DOUBLE_EQ(s.gpu_utilization, 14.0 / 15);
  EXPECT_EQ(s.preemptions, 0);
  EXPECT_EQ(s.fairness_min, 1);
  EXPECT_EQ(s.fairness_max_over_min, 1);
  // 50 buckets of 3 s: all 4 GPUs busy until 130 (bucket 43 is [129, 132): 1 s of 4 GPUs and
  // 2 s of 2, so 8/12), then 2 of 4.
  const std::vector<double>& u = run->result.utilization_over_time;
  ASSERT_EQ(u.size(), 50u);
  EXPECT_DOUBLE_EQ(u[0], 1.0);
  EXPECT_DOUBLE_EQ(u[33], 1.0);
  EXPECT_DOUBLE_EQ(u[43], 8.0 / 12);
  EXPECT_DOUBLE_EQ(u[49], 0.5);
}

TEST(SimulatorTest, FifoIsStrictSoASmallJobWaitsBehindTheHead) {
  // 4 GPUs. A (0 s, 3 GPUs, 100 s) leaves 1 free; B (10 s, 2, 10 s) does not fit; C (20 s, 1,
  // 10 s) would, but FIFO keeps it behind B. At 100 both start and end at 110.
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s\n"
      "A,0,3,100\nB,10,2,10\nC,20,1,10\n",
      {});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->starts, (Times{0, 100, 100}));
  EXPECT_EQ(run->ends, (Times{100, 110, 110}));
  EXPECT_DOUBLE_EQ(run->summary.avg_jct_s, (100.0 + 100 + 90) / 3);
}

TEST(SimulatorTest, MultiNodeGangsAndJobsThatNeverFit) {
  // 2 nodes of 4 GPUs. D (0 s, 6 GPUs, 50 s) is a gang of 4 + 2 over both nodes, leaving 2
  // free GPUs on one node. E (5 s, 4 GPUs, 20 s) is one task of 4: no node has 4 free, so it
  // waits; F (10 s, 2, 10 s) would fit but waits behind E (FIFO). G (15 s, 12 GPUs) could never
  // run on 8 and is skipped. At 50 D ends: E and F start, ending at 70 and 60.
  // JCT: D 50, E 65, F 50; average 55; makespan 70; busy 6*50 + 4*20 + 2*10 = 400 GPU-seconds
  // of 8*70 = 560: 5/7.
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s\n"
      "D,0,6,50\nE,5,4,20\nF,10,2,10\nG,15,12,10\n",
      {.cluster = "2x4"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->workload.skipped, 1);
  ASSERT_EQ(run->workload.jobs.size(), 3u);
  EXPECT_EQ(run->workload.jobs[0].request.tasks.size(), 2u);
  EXPECT_EQ(run->starts, (Times{0, 50, 50}));
  EXPECT_EQ(run->ends, (Times{50, 70, 60}));
  EXPECT_DOUBLE_EQ(run->summary.avg_jct_s, 55);
  EXPECT_EQ(run->summary.p50_jct_s, 50);
  EXPECT_EQ(run->summary.makespan_s, 70);
  EXPECT_DOUBLE_EQ(run->summary.gpu_utilization, 5.0 / 7);
}

TEST(SimulatorTest, OracleSrtfIsTextbookSrtfWithoutRestartCost) {
  // One GPU. A (0 s, 100 s) runs from 0. B (10 s, 20 s) is shorter than A's remaining 90 and
  // preempts it. C (20 s, 5 s) is shorter than B's remaining 10 and preempts B; it ends at 25.
  // Then B (10 left) runs 25-35 and A (90 left) 35-125.
  // JCT: A 125, B 25, C 5; two preemptions; the GPU is never idle.
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s\n"
      "A,0,1,100\nB,10,1,20\nC,20,1,5\n",
      {.cluster = "1x1", .policy = "oracle-srtf"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->starts, (Times{0, 10, 20}));
  EXPECT_EQ(run->ends, (Times{125, 35, 25}));
  EXPECT_EQ(run->summary.preemptions, 2);
  EXPECT_EQ(run->result.jobs[0].preemptions, 1);
  EXPECT_EQ(run->result.jobs[1].preemptions, 1);
  EXPECT_DOUBLE_EQ(run->summary.avg_jct_s, 155.0 / 3);
  EXPECT_DOUBLE_EQ(run->summary.gpu_utilization, 1.0);
}

TEST(SimulatorTest, OracleSrtfKnowsWhatAPreemptedJobHasLeft) {
  // One GPU. A (0 s, 100 s) is preempted at 10 by B (10 s, 20 s), which runs to 30. C (20 s,
  // 95 s) arrived meanwhile. At 30 A has 90 left, less than C's 95, so A runs 30-120 and C
  // 120-215 (with A's original 100 s, C would wrongly go first).
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s\n"
      "A,0,1,100\nB,10,1,20\nC,20,1,95\n",
      {.cluster = "1x1", .policy = "oracle-srtf"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->starts, (Times{0, 10, 120}));
  EXPECT_EQ(run->ends, (Times{120, 30, 215}));
  EXPECT_EQ(run->summary.preemptions, 1);
}

TEST(SimulatorTest, OracleSrtfPreemptsAJobOnceForTwoShorterOnes) {
  // One GPU. A (0 s, 100 s) runs from 0. At 10 s come B (20 s) and C (30 s), both shorter than
  // A's remaining 90: B preempts A and runs 10-30, C runs 30-60, A (90 left) 60-150.
  // JCT: A 150, B 20, C 50; one preemption.
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s\n"
      "A,0,1,100\nB,10,1,20\nC,10,1,30\n",
      {.cluster = "1x1", .policy = "oracle-srtf"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->starts, (Times{0, 10, 30}));
  EXPECT_EQ(run->ends, (Times{150, 30, 60}));
  EXPECT_EQ(run->summary.preemptions, 1);
}

TEST(SimulatorTest, OracleSrtfKeepsTheFreeGpusAPreemptorCountsOn) {
  // Two GPUs on one node. V (0 s, 1 GPU, 100 s) runs from 0, one GPU stays free. At 10 s come
  // P (2 GPUs, 20 s) and L (1 GPU, 500 s). P is shortest: it preempts V (90 s left) and needs
  // the free GPU too, so L must not take it. P runs 10-30; then V (90 left) and L start: V
  // ends at 120, L at 530. One preemption.
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s\n"
      "V,0,1,100\nP,10,2,20\nL,10,1,500\n",
      {.cluster = "1x2", .policy = "oracle-srtf"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->starts, (Times{0, 10, 30}));
  EXPECT_EQ(run->ends, (Times{120, 30, 530}));
  EXPECT_EQ(run->summary.preemptions, 1);
}

TEST(SimulatorTest, APreemptedJobPaysTheRestartCostWhenItResumes) {
  // One GPU, restart cost 30 s. A (0 s, 100 s) is preempted at 10 by B (10 s, 20 s) with 90 s
  // left; B runs 10-30; A resumes at 30, restarts for 30 s and ends at 30 + 30 + 90 = 150.
  // The GPU is held all along: busy 150 of 150.
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s\n"
      "A,0,1,100\nB,10,1,20\n",
      {.cluster = "1x1", .policy = "oracle-srtf", .restart_cost_s = 30});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->ends, (Times{150, 30}));
  EXPECT_DOUBLE_EQ(run->summary.gpu_utilization, 1.0);
}

TEST(SimulatorTest, FairnessIsHeldOverEntitledWhileQueued) {
  // 4 GPUs, tenants t1 and t2, all jobs 100 s at 0 s, FIFO: A (t1, 2 GPUs) and B (t2, 1) start;
  // C (t1, 2) does not fit and D (t2, 2) waits behind it; both start at 100.
  // During [0, 100) t1 wants 4 (holds 2) and t2 wants 3 (holds 1): water-filling gives 2 each,
  // so t1's ratio is 2/2 = 1 and t2's 1/2 = 0.5. Nothing is queued afterwards.
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s,tenant\n"
      "A,0,2,100,t1\nB,0,1,100,t2\nC,0,2,100,t1\nD,0,2,100,t2\n",
      {});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->ends, (Times{100, 100, 200, 200}));
  ASSERT_EQ(run->result.tenants.size(), 2u);
  EXPECT_DOUBLE_EQ(run->result.tenants[0].queued_s, 100);
  EXPECT_DOUBLE_EQ(run->result.tenants[0].ratio, 1.0);
  EXPECT_DOUBLE_EQ(run->result.tenants[1].ratio, 0.5);
  EXPECT_DOUBLE_EQ(run->summary.fairness_min, 0.5);
  EXPECT_EQ(run->summary.fairness_max_over_min, 2.0);
  // Fair up to one job, t2 is served: D would take it to 3 GPUs, past its 2.
  EXPECT_DOUBLE_EQ(run->result.tenants[1].ratio_one_job, 1.0);
  EXPECT_DOUBLE_EQ(run->summary.fairness_min_one_job, 1.0);
  // Over its busy time [0, 200) t2 held 1 then 2 GPUs of its 2: 300 of 400 GPU-seconds.
  EXPECT_DOUBLE_EQ(run->result.tenants[1].busy_ratio, 0.75);
  EXPECT_DOUBLE_EQ(run->summary.fairness_min_busy, 0.75);
  EXPECT_DOUBLE_EQ(run->summary.gpu_utilization, 700.0 / 800);
}

TEST(SimulatorTest, JobsThatCouldNeverRunAreSkippedBeforeTheRun) {
  // B asks for more CPUs than the node has (8): it is skipped; A runs 0-10 alone.
  auto run = Replay(
      "job_id,submit_s,num_gpus,duration_s,cpu_milli\n"
      "A,0,1,10,\nB,0,1,10,999999\n",
      {.cluster = "1x1"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->workload.skipped, 1);
  EXPECT_EQ(run->result.unfinished, 0);
  EXPECT_EQ(run->ends, (Times{10}));
}

}  // namespace
}  // namespace dlab::sim
