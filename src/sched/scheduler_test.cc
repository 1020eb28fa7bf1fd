#include "sched/scheduler.h"

#include <gtest/gtest.h>

#include "sched/framework.h"

namespace dlab {
namespace {

// The fifo policy of the scheduling framework on one node, driven from a snapshot: what runs
// (by tenant), the queue in order, the quotas.
struct QueuedJob {
  int64_t job_id = 0;
  std::vector<Resources> tasks;
  int64_t tenant_id = 0;
};
struct Running {
  int64_t tenant_id = 0;
  Allocation allocation;
};
struct ScheduleInput {
  NodeCapacity node;
  std::vector<Running> in_use;
  std::vector<QueuedJob> queue;
  std::map<int64_t, TenantQuota> quotas;
};
struct Placement {
  int64_t job_id = 0;
  Allocation allocation;
};
struct ScheduleDecision {
  std::vector<Placement> start;
  std::vector<WaitReason> wait;
};

ScheduleDecision ScheduleFifo(const ScheduleInput& in) {
  auto s = *NewScheduler({.policy = "fifo"}, {in.node});
  s->SetQuotas(in.quotas);
  int64_t id = 1000;
  for (const Running& r : in.in_use) {
    const Allocation& a = r.allocation;
    s->AddRunning(
        {.id = id++, .tenant_id = r.tenant_id},
        {{.node = 0,
          .alloc = {.cpu_millis = a.cpu_millis, .memory_bytes = a.memory_bytes, .gpus = a.gpus}}},
        0);
  }
  double t = 0;
  for (const QueuedJob& q : in.queue) {
    s->Enqueue({.id = q.job_id, .tenant_id = q.tenant_id, .submit_s = t, .tasks = q.tasks}, t);
    t += 1;
  }
  CycleResult r = s->Schedule(t, /*explain=*/true);
  ScheduleDecision d{.wait = r.wait};
  for (const StartDecision& st : r.start) {
    Allocation a;
    for (const NodeTask& task : st.tasks) {
      a.cpu_millis += task.alloc.cpu_millis;
      a.memory_bytes += task.alloc.memory_bytes;
      a.gpus.insert(a.gpus.end(), task.alloc.gpus.begin(), task.alloc.gpus.end());
      a.tasks.push_back(task.alloc);
    }
    std::sort(a.gpus.begin(), a.gpus.end());
    d.start.push_back({st.job_id, std::move(a)});
  }
  return d;
}

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

// Which jobs a decision starts, and why the others wait, against a table case's expectations.
void ExpectDecision(const ScheduleDecision& d, const std::vector<int64_t>& started,
                    const std::vector<std::string>& wait_reasons, const std::string& name) {
  std::vector<int64_t> ids;
  for (const auto& p : d.start) ids.push_back(p.job_id);
  EXPECT_EQ(ids, started) << name;
  std::vector<std::string> reasons;
  for (const auto& w : d.wait) reasons.push_back(w.reason);
  EXPECT_EQ(reasons, wait_reasons) << name;
}

TEST(ScheduleFifoTest, TableOfCases) {
  struct Case {
    std::string name;
    std::vector<Running> in_use;
    std::vector<QueuedJob> queue;
    std::vector<int64_t> started;
    std::vector<std::string> wait_reasons;
  };
  std::vector<Case> cases = {
      {"everything fits", {}, {{1, {Req(1000, 1)}}, {2, {Req(2000, 2)}}}, {1, 2}, {}},
      {"cpu exhausted blocks later jobs",
       {{.allocation = {.cpu_millis = 3000, .memory_bytes = 1LL << 30}}},
       {{1, {Req(2000, 1)}}, {2, {Req(500, 1)}}},
       {},
       {"waiting for resources: needs cpus 2 (free 1)", "waiting behind job 1 (FIFO order)"}},
      {"memory",
       {},
       {{1, {Req(1000, 6)}}, {2, {Req(1000, 6)}}},
       {1},
       {"waiting for resources: needs memory 6Gi (free 2Gi)"}},
      {"gpu type",
       {{.allocation = {.gpus = {0}}}},
       {{1, {Req(100, 1, 1, "H100")}}, {2, {Req(100, 1, 1, "h100")}}},
       {1},
       {"waiting for resources: needs 1 h100 GPUs (free 0)"}},
      {"any type takes what is left",
       {{.allocation = {.gpus = {0, 1}}}},
       {{1, {Req(100, 1, 1)}}},
       {1},
       {}},
  };
  for (const Case& c : cases) {
    auto d = ScheduleFifo({.node = Node(), .in_use = c.in_use, .queue = c.queue});
    ExpectDecision(d, c.started, c.wait_reasons, c.name);
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

TEST(ScheduleFifoTest, ATypeListGivesATaskGpusOfOneType) {
  // Node(): GPUs 0 and 1 are H100s, 2 an A100. The first listed type with enough free wins.
  auto one = ScheduleFifo({.node = Node(), .queue = {{1, {Req(100, 1, 1, "A100,H100")}}}});
  ASSERT_EQ(one.start.size(), 1u);
  EXPECT_EQ(one.start[0].allocation.gpus, (std::vector<int>{2}));
  auto two = ScheduleFifo({.node = Node(), .queue = {{1, {Req(100, 1, 2, "A100,H100")}}}});
  ASSERT_EQ(two.start.size(), 1u);
  EXPECT_EQ(two.start[0].allocation.gpus, (std::vector<int>{0, 1}));
  // With one H100 busy, one H100 and the A100 are free: 2 GPUs but not of one type. It waits
  // rather than mix models in one task (it used to get GPUs 1 and 2).
  auto busy = ScheduleFifo({.node = Node(),
                            .in_use = {{.allocation = {.gpus = {0}}}},
                            .queue = {{1, {Req(100, 1, 2, "H100, A100")}}}});
  EXPECT_TRUE(busy.start.empty());
  ASSERT_EQ(busy.wait.size(), 1u);
  EXPECT_EQ(busy.wait[0].reason,
            "waiting for resources: needs 2 GPUs of one type of H100, A100 (at most 1 free of "
            "one type)");
}

TEST(ScheduleFifoTest, AGangOnOneNodeTakesOneTypeOfAList) {
  // 2 H100s (0, 1) and 4 A100s (2-5): two tasks of 2 GPUs each fit on the A100s together, so
  // both take A100s rather than one task each type.
  NodeCapacity node = {.cpu_millis = 4000,
                       .memory_bytes = 8LL << 30,
                       .gpus = {{0, "H100", "H100"},
                                {1, "H100", "H100"},
                                {2, "A100", "A100"},
                                {3, "A100", "A100"},
                                {4, "A100", "A100"},
                                {5, "A100", "A100"}}};
  std::vector<Resources> gang = {Req(100, 1, 2, "H100,A100"), Req(100, 1, 2, "H100,A100")};
  EXPECT_TRUE(CheckCanEverRun(gang, node).ok());
  auto d = ScheduleFifo({.node = node, .queue = {{1, gang}}});
  ASSERT_EQ(d.start.size(), 1u);
  EXPECT_EQ(d.start[0].allocation.gpus, (std::vector<int>{2, 3, 4, 5}));
  // On 2 H100s and 2 A100s the gang fits one task of each type; submission must not refuse it.
  node.gpus.resize(4);
  EXPECT_TRUE(CheckCanEverRun(gang, node).ok());
  auto split = ScheduleFifo({.node = node, .queue = {{1, gang}}});
  ASSERT_EQ(split.start.size(), 1u);
  ASSERT_EQ(split.start[0].allocation.tasks.size(), 2u);
  EXPECT_EQ(split.start[0].allocation.tasks[0].gpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(split.start[0].allocation.tasks[1].gpus, (std::vector<int>{2, 3}));
}

TEST(ScheduleFifoTest, GangStartsWholeOrWaitsHoldingNothing) {
  // Two GPU tasks fit; a 3-task gang of 1 GPU each does not while GPU 0 is busy, and the job
  // behind it waits too (FIFO) rather than taking part of the machine.
  auto d = ScheduleFifo(
      {.node = Node(),
       .in_use = {{.allocation = {.cpu_millis = 100, .memory_bytes = 1LL << 30, .gpus = {0}}}},
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
  EXPECT_EQ(CheckCanEverRun({Req(100, 1, 1, "V100,T4")}, Node()).message(),
            "resources.gpu_type: no GPU of any of the types 'V100', 'T4' on this cluster (types: "
            "A100, H100)");
  // Three GPUs match the list, but at most two of one type.
  EXPECT_EQ(CheckCanEverRun({Req(100, 1, 3, "H100,A100")}, Node()).message(),
            "resources.gpus: 3 GPUs of one type of H100, A100 requested, but the largest node has "
            "2");
  EXPECT_EQ(CheckCanEverRun({Req(8000, 1)}, Node()).message(),
            "resources.cpus: 8 CPUs requested, but the largest node has 4");
  EXPECT_EQ(CheckCanEverRun({Req(100, 16)}, Node()).message(),
            "resources.memory: 16Gi requested, but the largest node has 8Gi");
}

}  // namespace
}  // namespace dlab

namespace dlab {
namespace {

// Tenant 7 has a quota; tenant 8 has none. Each case: the quota, what tenant 7 holds now, the
// queue, which jobs start and why the others wait.
TEST(ScheduleFifoQuotaTest, TableOfCases) {
  struct Case {
    std::string name;
    TenantQuota quota;
    TenantUsage used;
    std::vector<QueuedJob> queue;
    std::vector<int64_t> started;
    std::vector<std::string> wait_reasons;
  };
  std::vector<Case> cases = {
      {"running jobs up to the limit",
       {.running_jobs = 2},
       {},
       {{1, {Req(100, 1)}, 7}, {2, {Req(100, 1)}, 7}, {3, {Req(100, 1)}, 7}},
       {1, 2},
       {"tenant quota: running_jobs: needs 1, 2 of 2 in use"}},
      {"another tenant is not held up",
       {.running_jobs = 1},
       {.running_jobs = 1},
       {{1, {Req(100, 1)}, 7}, {2, {Req(100, 1)}, 8}, {3, {Req(100, 1)}, 7}},
       {2},
       {"tenant quota: running_jobs: needs 1, 1 of 1 in use",
        "tenant quota: waiting behind job 1 of the same tenant"}},
      {"gpus and cpus counted together",
       {.gpus = 1, .cpu_millis = 1500},
       {},
       {{1, {Req(1000, 1, 1)}, 7}, {2, {Req(1000, 1)}, 7}},
       {1},
       {"tenant quota: cpus: needs 1, 1 of 1500m in use"}},
      {"used-up GPU type is not offered: an any-type job gets the A100",
       {.gpus_by_type = {{"H100", 1}}},
       {.gpus = 1, .gpus_by_type = {{"H100", 1}}, .running_jobs = 1},
       {{1, {Req(100, 1, 1)}, 7}},
       {1},
       {}},
      {"a job that needs the used-up type waits for the quota",
       {.gpus_by_type = {{"h100", 1}}},
       {.gpus = 1, .gpus_by_type = {{"H100", 1}}, .running_jobs = 1},
       {{1, {Req(100, 1, 1, "H100")}, 7}},
       {},
       {"tenant quota: the free GPUs that fit are of types whose quota is used up"}},
      {"a gang over the type limit waits",
       {.gpus_by_type = {{"H100", 1}}},
       {},
       {{1, {Req(100, 1, 1, "H100"), Req(100, 1, 1, "H100")}, 7}},
       {},
       {"tenant quota: gpus_by_type.H100: needs 2, 0 of 1 in use"}},
      {"node resources still block everyone (FIFO)",
       {},
       {},
       {{1, {Req(8000, 1)}, 8}, {2, {Req(100, 1)}, 7}},
       {},
       {"waiting for resources: needs cpus 8 (free 4)",
        "waiting behind job 1 of another tenant (FIFO order)"}},
  };
  for (const Case& c : cases) {
    std::vector<Running> in_use;
    if (c.used.running_jobs > 0) {  // tenant 7's running job, on an H100 if it holds a GPU
      in_use.push_back(
          {.tenant_id = 7,
           .allocation = {.gpus = c.used.gpus > 0 ? std::vector<int>{0} : std::vector<int>{}}});
    }
    auto d = ScheduleFifo(
        {.node = Node(), .in_use = in_use, .queue = c.queue, .quotas = {{7, c.quota}}});
    ExpectDecision(d, c.started, c.wait_reasons, c.name);
    if (c.name.find("A100") != std::string::npos && d.start.size() == 1) {
      EXPECT_EQ(d.start[0].allocation.gpus, std::vector<int>{2}) << c.name;
    }
  }
}

TEST(QuotaTest, CanEverAdmitNamesTheLimits) {
  EXPECT_TRUE(CheckQuotaCanEverAdmit({Req(1000, 1, 2)}, {.gpus = 2}).ok());
  auto s = CheckQuotaCanEverAdmit({Req(1000, 1, 2), Req(1000, 1, 2)}, {.gpus = 3});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(),
            "exceeds the tenant's quota, so it could never start: gpus: needs 4, 0 of 3 in use");
  s = CheckQuotaCanEverAdmit({Req(1000, 3)}, {.memory_bytes = 2LL << 30});
  EXPECT_EQ(
      s.message(),
      "exceeds the tenant's quota, so it could never start: memory: needs 3Gi, 0 of 2Gi in use");
  EXPECT_EQ(CheckQuotaCanEverAdmit({Req(100, 1)}, {.running_jobs = 0}).code(),
            absl::StatusCode::kPermissionDenied);
  // A job without a GPU type is not held to a per-type limit it might not need.
  EXPECT_TRUE(CheckQuotaCanEverAdmit({Req(100, 1, 2)}, {.gpus_by_type = {{"H100", 1}}}).ok());
  EXPECT_FALSE(
      CheckQuotaCanEverAdmit({Req(100, 1, 2, "h100")}, {.gpus_by_type = {{"H100", 1}}}).ok());
}

TEST(QuotaTest, UsageOfAnAllocationCountsGpusByType) {
  TenantUsage u = UsageOf({.cpu_millis = 500, .memory_bytes = 1 << 20, .gpus = {0, 2}}, Node());
  EXPECT_EQ(u.running_jobs, 1);
  EXPECT_EQ(u.gpus, 2);
  EXPECT_EQ(u.gpus_by_type, (std::map<std::string, int>{{"A100", 1}, {"H100", 1}}));
  EXPECT_EQ(u.cpu_millis, 500);
}

}  // namespace
}  // namespace dlab
