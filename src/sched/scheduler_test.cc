#include "sched/scheduler.h"

#include <gtest/gtest.h>

namespace dlab {
namespace {

NodeCapacity Node() {
  return {.cpu_millis = 4000,
          .memory_bytes = 8LL << 30,
          .gpus = {{0, "H100", "NVIDIA H100 80GB HBM3"},
                   {1, "H100", "NVIDIA H100 80GB HBM3"},
                   {2, "A100", "NVIDIA A100-SXM4-40GB"}}};
}

Resources Req(int64_t cpu_millis, int64_t mem_gib, int gpus = 0, std::string type = "") {
  return {.cpu_millis = cpu_millis, .memory_bytes = mem_gib << 30, .gpus = gpus, .gpu_type = type};
}

TEST(ScheduleFifoTest, TableOfCases) {
  struct Case {
    std::string name;
    std::vector<Allocation> in_use;
    std::vector<QueuedJob> queue;
    std::vector<int64_t> started;
    std::vector<std::string> wait_reasons;
  };
  std::vector<Case> cases = {
      {"everything fits", {}, {{1, {Req(1000, 1)}}, {2, {Req(2000, 2)}}}, {1, 2}, {}},
      {"cpu exhausted blocks later jobs",
       {{.cpu_millis = 3000, .memory_bytes = 1LL << 30}},
       {{1, {Req(2000, 1)}}, {2, {Req(500, 1)}}},
       {},
       {"waiting for resources: needs cpus 2 (free 1)", "waiting behind job 1 (FIFO order)"}},
      {"memory",
       {},
       {{1, {Req(1000, 6)}}, {2, {Req(1000, 6)}}},
       {1},
       {"waiting for resources: needs memory 6Gi (free 2Gi)"}},
      {"gpu type",
       {{.gpus = {0}}},
       {{1, {Req(100, 1, 1, "H100")}}, {2, {Req(100, 1, 1, "h100")}}},
       {1},
       {"waiting for resources: needs 1 h100 GPUs (free 0)"}},
      {"any type takes what is left", {{.gpus = {0, 1}}}, {{1, {Req(100, 1, 1)}}}, {1}, {}},
  };
  for (const Case& c : cases) {
    auto d = ScheduleFifo({.node = Node(), .in_use = c.in_use, .queue = c.queue});
    std::vector<int64_t> started;
    for (const auto& p : d.start) started.push_back(p.job_id);
    EXPECT_EQ(started, c.started) << c.name;
    std::vector<std::string> reasons;
    for (const auto& w : d.wait) reasons.push_back(w.reason);
    EXPECT_EQ(reasons, c.wait_reasons) << c.name;
  }
}

TEST(ScheduleFifoTest, AllocatesDistinctGpusOfTheRightType) {
  auto d = ScheduleFifo(
      {.node = Node(), .queue = {{1, {Req(100, 1, 1, "A100")}}, {2, {Req(100, 1, 2, "H100")}}}});
  ASSERT_EQ(d.start.size(), 2u);
  EXPECT_EQ(d.start[0].allocation.gpus, (std::vector<int>{2}));
  EXPECT_EQ(d.start[1].allocation.gpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(d.start[1].allocation.cpu_millis, 100);
}

TEST(ScheduleFifoTest, GangStartsWholeOrWaitsHoldingNothing) {
  // Two GPU tasks fit; a 3-task gang of 1 GPU each does not while GPU 0 is busy, and the job
  // behind it waits too (FIFO) rather than taking part of the machine.
  auto d = ScheduleFifo(
      {.node = Node(),
       .in_use = {{.cpu_millis = 100, .memory_bytes = 1LL << 30, .gpus = {0}}},
       .queue = {{1, {Req(100, 1, 1), Req(100, 1, 1), Req(100, 1, 1)}}, {2, {Req(100, 1, 1)}}}});
  EXPECT_TRUE(d.start.empty());
  ASSERT_EQ(d.wait.size(), 2u);
  EXPECT_EQ(d.wait[0].reason, "waiting for resources: needs 3 GPUs (free 2)");

  auto ok = ScheduleFifo(
      {.node = Node(), .queue = {{1, {Req(1000, 1, 1, "H100"), Req(1000, 2, 1, "A100")}}}});
  ASSERT_EQ(ok.start.size(), 1u);
  const Allocation& a = ok.start[0].allocation;
  EXPECT_EQ(a.cpu_millis, 2000);
  EXPECT_EQ(a.memory_bytes, 3LL << 30);
  ASSERT_EQ(a.tasks.size(), 2u);
  EXPECT_EQ(a.tasks[0].gpus, std::vector<int>{0});
  EXPECT_EQ(a.tasks[1].gpus, std::vector<int>{2});
  EXPECT_EQ(a.tasks[1].memory_bytes, 2LL << 30);
  EXPECT_EQ(a.gpus, (std::vector<int>{0, 2}));
}

TEST(CheckCanEverRunTest, RefusesGangsLargerThanTheNode) {
  EXPECT_TRUE(CheckCanEverRun({Req(2000, 4), Req(2000, 4)}, Node()).ok());
  EXPECT_EQ(CheckCanEverRun({Req(2000, 1), Req(2000, 1), Req(2000, 1)}, Node()).message(),
            "tasks: 3 tasks need 6 CPUs in total, but the largest node has 4");
  EXPECT_EQ(CheckCanEverRun({Req(100, 1, 2, "H100"), Req(100, 1, 1, "H100")}, Node()).message(),
            "tasks: 2 tasks need 3 H100 GPUs in total, but the largest node has 2");
  EXPECT_EQ(CheckCanEverRun({Req(100, 1, 1, "V100"), Req(100, 1)}, Node()).message(),
            "tasks: no GPU of type 'V100' on this cluster (types: A100, H100)");
}

TEST(CheckCanEverRunTest, RefusesWhatTheNodeNeverHas) {
  EXPECT_TRUE(CheckCanEverRun({Req(4000, 8, 2, "H100")}, Node()).ok());
  EXPECT_EQ(CheckCanEverRun({Req(100, 1, 4)}, Node()).message(),
            "resources.gpus: 4 GPUs requested, but the largest node has 3");
  EXPECT_EQ(CheckCanEverRun({Req(100, 1, 3, "H100")}, Node()).message(),
            "resources.gpus: 3 H100 GPUs requested, but the largest node has 2");
  EXPECT_EQ(CheckCanEverRun({Req(100, 1, 1, "V100")}, Node()).message(),
            "resources.gpu_type: no GPU of type 'V100' on this cluster (types: A100, H100)");
  EXPECT_EQ(CheckCanEverRun({Req(8000, 1)}, Node()).message(),
            "resources.cpus: 8 CPUs requested, but the largest node has 4");
  EXPECT_EQ(CheckCanEverRun({Req(100, 16)}, Node()).message(),
            "resources.memory: 16Gi requested, but the largest node has 8Gi");
}

}  // namespace
}  // namespace dlab
