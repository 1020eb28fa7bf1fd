#include "sim/workload.h"

#include <gtest/gtest.h>

#include "sim/cluster_spec.h"

namespace dlab::sim {
namespace {

TraceJob Job(std::string id, double submit_s, int gpus, std::optional<double> duration_s = 10,
             std::string tenant = "default") {
  return {.id = std::move(id),
          .submit_s = submit_s,
          .gpus = gpus,
          .duration_s = duration_s,
          .tenant = std::move(tenant)};
}

TEST(TasksForTest, OneTaskUpToTheLargestNodeThenNodeSizedTasks) {
  auto one = TasksFor(Job("a", 0, 8), 8);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].gpus, 8);
  EXPECT_EQ(one[0].cpu_millis, 8 * kJobCpuMillisPerGpu);
  EXPECT_EQ(one[0].memory_bytes, 8 * kJobMemoryBytesPerGpu);
  // 20 GPUs on nodes of 8: 8 + 8 + 4, CPU and memory by GPUs.
  auto gang = TasksFor(Job("b", 0, 20), 8);
  ASSERT_EQ(gang.size(), 3u);
  EXPECT_EQ(gang[0].gpus, 8);
  EXPECT_EQ(gang[2].gpus, 4);
  EXPECT_EQ(gang[2].cpu_millis, 4 * kJobCpuMillisPerGpu);
  // A trace's own CPU and memory are split in proportion, rounded up: 1000m * 1/3 -> 334m.
  TraceJob c = Job("c", 0, 3);
  c.cpu_millis = 1000;
  c.memory_bytes = 3000;
  auto split = TasksFor(c, 1);
  ASSERT_EQ(split.size(), 3u);
  EXPECT_EQ(split[0].cpu_millis, 334);
  EXPECT_EQ(split[0].memory_bytes, 1000);
  // A CPU-only job asks for one GPU's worth of CPU and memory.
  auto cpu_only = TasksFor(Job("d", 0, 0), 8);
  ASSERT_EQ(cpu_only.size(), 1u);
  EXPECT_EQ(cpu_only[0].gpus, 0);
  EXPECT_EQ(cpu_only[0].cpu_millis, kJobCpuMillisPerGpu);
}

TEST(BuildWorkloadTest, ShiftsTimesNumbersTenantsAndCountsWhatIsLeftOut) {
  auto nodes = *ParseCluster("2x4");
  TraceJob fractional = Job("e", 300, 1, 10, "t1");
  fractional.fractional_gpu = true;
  TraceJob typed = Job("f", 400, 1, 10, "t1");
  typed.gpu_type = "H100";
  Workload w = BuildWorkload({Job("pending", 50, 1, std::nullopt), Job("a", 100, 2, 10, "t2"),
                              Job("huge", 150, 9), Job("b", 200, 6, 10, "t1"), fractional, typed},
                             nodes);
  ASSERT_EQ(w.jobs.size(), 3u);
  EXPECT_EQ(w.shift_s, 100);
  EXPECT_EQ(w.jobs[0].request.id, 1);
  EXPECT_EQ(w.jobs[0].request.submit_s, 0);
  EXPECT_EQ(w.jobs[0].request.tenant_id, 1);  // t2 came first
  EXPECT_EQ(w.jobs[0].request.oracle_remaining_s, 10);
  EXPECT_EQ(w.jobs[1].request.id, 2);
  EXPECT_EQ(w.jobs[1].request.submit_s, 100);
  EXPECT_EQ(w.jobs[1].request.tenant_id, 2);
  EXPECT_EQ(w.jobs[1].request.tasks.size(), 2u);  // 6 GPUs on nodes of 4: 4 + 2
  EXPECT_EQ(w.jobs[1].gpus, 6);
  EXPECT_EQ(w.tenants, (std::vector<std::string>{"t2", "t1"}));
  EXPECT_EQ(w.no_duration, 1);
  EXPECT_EQ(w.fractional_gpu, 1);
  EXPECT_EQ(w.skipped, 2);  // 9 GPUs on 8, and an H100 on a cluster without
  EXPECT_EQ(w.first_skipped, "job huge: needs 9 GPUs, the cluster has 8");
}

TEST(EndedBeforeTest, JobsBeforeTheSelectionThatEndedBeforeItsFirstArrival) {
  Trace trace{.jobs = {Job("a", 0, 2, 50, "vc1"), Job("b", 10, 1, 50, "vc2"),
                       Job("c", 20, 1, 500, "vc1"), Job("d", 30, 4, 60, "vc3"),
                       Job("e", 100, 1, 10, "vc3"), Job("f", 110, 1, 10, "vc1")}};
  auto nodes = ParseCluster("1x8");
  ASSERT_TRUE(nodes.ok());
  for (const JobSelection& selection :
       {JobSelection{.first = 4, .count = 2}, JobSelection{.from_s = 100, .to_s = 200}}) {
    Workload workload = BuildWorkload(SelectJobs(trace, selection), *nodes);
    ASSERT_EQ(workload.tenants, (std::vector<std::string>{"vc3", "vc1"}));
    // a, b and d ended at 50, 60 and 90, before the first arrival at 100; c runs until 520.
    // Tenants keep the workload's numbers (vc3 is 1, vc1 is 2); vc2, not in it, comes after.
    auto ended = EndedBefore(trace, selection, workload);
    ASSERT_EQ(ended.size(), 3u);
    EXPECT_EQ(ended[0].tenant_id, 2);
    EXPECT_EQ(ended[0].gpus, 2);
    EXPECT_EQ(ended[0].gpu_s, 100);
    EXPECT_EQ(ended[1].tenant_id, 3);
    EXPECT_EQ(ended[1].gpu_s, 50);
    EXPECT_EQ(ended[2].tenant_id, 1);
    EXPECT_EQ(ended[2].gpus, 4);
    EXPECT_EQ(ended[2].gpu_s, 240);
  }
  // The whole trace: nothing came before it.
  Workload all = BuildWorkload(SelectJobs(trace, JobSelection{}), *nodes);
  EXPECT_TRUE(EndedBefore(trace, JobSelection{}, all).empty());
}

TEST(BuildWorkloadTest, SkipsGangsWithoutEnoughNodesForTheirTasks) {
  // Nodes of 4, 4, 2 and 2 GPUs (12). 10 GPUs as 4 + 4 + 2 fits; 12 as 4 + 4 + 4 needs three
  // nodes that hold 4, and only two do.
  std::vector<NodeCapacity> nodes = *ParseCluster("2x4");
  std::vector<NodeCapacity> small = *ParseCluster("2x2");
  nodes.insert(nodes.end(), small.begin(), small.end());
  Workload w = BuildWorkload({Job("fits", 0, 10), Job("too-many", 0, 12)}, nodes);
  ASSERT_EQ(w.jobs.size(), 1u);
  EXPECT_EQ(w.jobs[0].request.tasks.size(), 3u);
  EXPECT_EQ(w.skipped, 1);
  EXPECT_EQ(w.first_skipped,
            "job too-many: a gang of 3 tasks of 4 GPUs needs as many nodes that hold one, the "
            "cluster has 2");
}

TEST(BuildWorkloadTest, TypedJobsUseTheLargestNodeOfTheirType) {
  auto nodes = *ParseNodeFile(
      "sn,cpu_milli,memory_mib,gpu,model\n"
      "n0,64000,262144,2,P100\nn1,64000,262144,2,P100\nn2,96000,393216,8,G2\n",
      "nodes.csv");
  TraceJob p100 = Job("p", 0, 4);
  p100.gpu_type = "P100";
  TraceJob any = Job("a", 0, 4);
  Workload w = BuildWorkload({p100, any}, nodes);
  ASSERT_EQ(w.jobs.size(), 2u);
  EXPECT_EQ(w.jobs[0].request.tasks.size(), 2u);  // 2 + 2 on the P100 nodes
  EXPECT_EQ(w.jobs[1].request.tasks.size(), 1u);  // fits the G2 node
  TraceJob cpu_hungry = Job("c", 0, 1);
  cpu_hungry.cpu_millis = 100000;
  Workload w2 = BuildWorkload({cpu_hungry}, nodes);
  EXPECT_EQ(w2.skipped, 1);
  EXPECT_EQ(w2.first_skipped,
            "job c: resources.cpus: 100 CPUs requested, but the largest node has 96");
}

}  // namespace
}  // namespace dlab::sim
