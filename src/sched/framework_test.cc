#include "sched/framework.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sched/plugins.h"

namespace dlab {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<NodeCapacity> Nodes(int n, int gpus, const std::string& type = "A100") {
  std::vector<NodeCapacity> out;
  for (int i = 0; i < n; ++i) {
    NodeCapacity c{.cpu_millis = 64000, .memory_bytes = 256LL << 30};
    for (int g = 0; g < gpus; ++g) c.gpus.push_back({.index = g, .type = type, .model = type});
    out.push_back(c);
  }
  return out;
}

struct J {
  int64_t id;
  int gpus = 1;
  int64_t tenant = 1;
  int priority = 0;
  double submit = 0;
  double start = -1;  // >= 0: running since then (placed by the scheduler at that time)
  double oracle = -1;
  double attained = 0;
  bool preemptible = true;
};

JobRequest Request(const J& j) {
  return {.id = j.id,
          .tenant_id = j.tenant,
          .priority = j.priority,
          .submit_s = j.submit,
          .tasks = {Resources{.cpu_millis = 1000, .memory_bytes = 1LL << 30, .gpus = j.gpus}},
          .preemptible = j.preemptible,
          .attained_gpu_s = j.attained,
          .oracle_remaining_s = j.oracle};
}

// A cluster snapshot (jobs running since their start, jobs queued) and one cycle at `now`.
struct Case {
  std::string name;
  std::string policy;
  std::map<std::string, std::string> params;
  int nodes = 1;
  int gpus = 4;
  std::vector<J> jobs;
  double now = 1000;
  std::vector<int64_t> start;    // jobs started by the cycle, in order
  std::vector<int64_t> preempt;  // victims, sorted
};

std::unique_ptr<Scheduler> Build(const Case& c) {
  auto s = NewScheduler({.policy = c.policy, .params = c.params}, Nodes(c.nodes, c.gpus));
  EXPECT_TRUE(s.ok()) << s.status();
  std::vector<J> running, queued;
  for (const J& j : c.jobs) (j.start >= 0 ? running : queued).push_back(j);
  // Running jobs are placed by the scheduler itself, in the order of their start.
  std::sort(running.begin(), running.end(),
            [](const J& a, const J& b) { return a.start < b.start; });
  for (const J& j : running) {
    (*s)->Enqueue(Request(j), j.start);
    auto r = (*s)->Schedule(j.start, false);
    EXPECT_EQ(r.start.size(), 1u) << "setup: job " << j.id << " should start at " << j.start;
  }
  for (const J& j : queued) (*s)->Enqueue(Request(j), j.submit);
  return *std::move(s);
}

// Two nodes of 4 GPUs: tenant 1 holds node 1 with a job too young to preempt (1) and a GPU of
// node 0 with a non-preemptible job (2) that ends first by its estimate; tenant 1's job 7 and
// below-share tenant 2's whole-node job 10 wait.
std::vector<J> DrainSnapshot() {
  return {{.id = 1, .gpus = 4, .tenant = 1, .start = 950},
          {.id = 2, .tenant = 1, .start = 500, .preemptible = false},
          {.id = 7, .tenant = 1, .submit = 960},
          {.id = 10, .gpus = 4, .tenant = 2, .submit = 990}};
}

class PolicyTable : public ::testing::TestWithParam<Case> {};

TEST_P(PolicyTable, Decides) {
  const Case& c = GetParam();
  auto s = Build(c);
  CycleResult r = s->Schedule(c.now, true);
  std::vector<int64_t> started, preempted;
  for (const auto& d : r.start) started.push_back(d.job_id);
  for (const auto& d : r.preempt) preempted.push_back(d.job_id);
  std::sort(preempted.begin(), preempted.end());
  EXPECT_EQ(started, c.start) << absl::StrJoin(r.wait, "; ", [](std::string* o, const auto& w) {
    absl::StrAppend(o, w.job_id, ": ", w.reason);
  });
  EXPECT_EQ(preempted, c.preempt);
}

INSTANTIATE_TEST_SUITE_P(
    Policies, PolicyTable,
    ::testing::Values(
        // fifo: the head that does not fit blocks everything behind it.
        Case{.name = "fifo_head_blocks",
             .policy = "fifo",
             .jobs = {{.id = 1, .gpus = 2, .start = 0},
                      {.id = 2, .gpus = 4, .submit = 1},
                      {.id = 3, .gpus = 1, .submit = 2}},
             .start = {}},
        Case{.name = "fifo_priority_first",
             .policy = "fifo",
             .jobs = {{.id = 1, .gpus = 2, .start = 0},
                      {.id = 2, .gpus = 2, .submit = 1},
                      {.id = 3, .gpus = 2, .priority = 5, .submit = 2}},
             .start = {3}},
        Case{.name = "fifo_never_preempts",
             .policy = "fifo",
             .jobs = {{.id = 1, .gpus = 4, .start = 0}, {.id = 2, .gpus = 1, .priority = 9}},
             .start = {}},
        // priority: a higher-priority job preempts the lower-priority job that loses least.
        Case{.name = "priority_preempts_cheapest",
             .policy = "priority",
             .jobs = {{.id = 1, .gpus = 2, .start = 0},
                      {.id = 2, .gpus = 2, .start = 500},
                      {.id = 3, .gpus = 2, .priority = 5, .submit = 900}},
             .start = {},
             .preempt = {2}},
        // Job 3 may preempt job 1 but takes node 0's jobs; job 4, of a lower priority than
        // job 1, may not take it (each preemptor is asked about victims for itself).
        Case{.name = "las_victims_are_per_preemptor",
             .policy = "las",
             .params = {{"preemption.min_runtime", "60"}},
             .nodes = 2,
             .gpus = 2,
             .jobs = {{.id = 6, .start = 0},
                      {.id = 2, .start = 10},
                      {.id = 5, .priority = 20, .start = 20},
                      {.id = 1, .priority = 5, .start = 900},
                      {.id = 3, .gpus = 2, .priority = 10, .submit = 950},
                      {.id = 4, .priority = 3, .submit = 960}},
             .start = {},
             .preempt = {2, 6}},
        Case{.name = "priority_spares_young_jobs",
             .policy = "priority",
             .jobs = {{.id = 1, .gpus = 4, .start = 900}, {.id = 2, .gpus = 2, .priority = 5}},
             .start = {},
             .preempt = {}},
        Case{.name = "priority_min_runtime_param",
             .policy = "priority",
             .params = {{"preemption.min_runtime", "60"}},
             .jobs = {{.id = 1, .gpus = 4, .start = 900}, {.id = 2, .gpus = 2, .priority = 5}},
             .preempt = {1}},
        // Two queued jobs preempt in one cycle: two different victims.
        Case{.name = "las_two_preemptors_two_distinct_victims",
             .policy = "las",
             .gpus = 2,
             .jobs = {{.id = 1, .start = 0},
                      {.id = 2, .start = 100},
                      {.id = 3, .submit = 4900},
                      {.id = 4, .submit = 4950}},
             .now = 5000,
             .preempt = {1, 2}},
        Case{.name = "fair_share_spares_a_job_started_in_the_same_cycle",
             .policy = "fair-share",
             .params = {{"preemption.min_runtime", "0"}},
             .gpus = 1,
             .jobs = {{.id = 1, .tenant = 1, .submit = 0}, {.id = 2, .tenant = 2, .submit = 1}},
             .now = 10,
             .start = {1},
             .preempt = {}},
        Case{.name = "priority_spares_equal_and_non_preemptible",
             .policy = "priority",
             .jobs = {{.id = 1, .gpus = 2, .priority = 5, .start = 0},
                      {.id = 2, .gpus = 2, .start = 0, .preemptible = false},
                      {.id = 3, .gpus = 2, .priority = 5}},
             .preempt = {}},
        // backfill: a short job may pass the blocked head when it ends before the head's
        // reservation (job 1 ends at 100 + 3600 by the default estimate).
        Case{.name = "backfill_short_job_passes",
             .policy = "backfill",
             .jobs = {{.id = 1, .gpus = 3, .start = 100},
                      {.id = 2, .gpus = 4, .submit = 200},
                      {.id = 3, .gpus = 1, .submit = 300}},
             .now = 1000,
             .start = {}},  // job 3's estimate (3600 s) would delay job 2: stays
        Case{.name = "backfill_on_other_node",
             .policy = "backfill",
             .nodes = 2,
             .jobs = {{.id = 1, .gpus = 4, .start = 0},
                      {.id = 4, .gpus = 2, .start = 0},
                      {.id = 2, .gpus = 4, .submit = 200},
                      {.id = 3, .gpus = 2, .submit = 300}},
             .start = {3}},
        // A running job past its estimate (3600 s by default) is expected to run as long again:
        // job 1 should end at 10000, so job 3 (ending by 8600) does not delay job 2.
        Case{.name = "backfill_overdue_job_runs_as_long_again",
             .policy = "backfill",
             .jobs = {{.id = 1, .gpus = 3, .start = 0},
                      {.id = 2, .gpus = 4, .submit = 200},
                      {.id = 3, .gpus = 1, .submit = 300}},
             .now = 5000,
             .start = {3}},
        // fair share drains a node for a below-share tenant's job that finds no victims (job 1 is
        // too young, job 2 not preemptible): job 7 would take a GPU of the node that job 2 frees
        // first, which job 10 is to have.
        Case{.name = "fair_share_drains_for_below_share_job",
             .policy = "fair-share",
             .nodes = 2,
             .jobs = DrainSnapshot(),
             .now = 1000,
             .start = {}},
        Case{.name = "fair_share_without_drain_starts_what_fits",
             .policy = "fair-share",
             .params = {{"fair_share.drain", "0"}},
             .nodes = 2,
             .jobs = DrainSnapshot(),
             .now = 1000,
             .start = {7}},
        // fair share: tenants take turns by dominant share.
        Case{.name = "fair_share_turns",
             .policy = "fair-share",
             .gpus = 4,
             .jobs = {{.id = 1, .tenant = 1, .submit = 0},
                      {.id = 2, .tenant = 1, .submit = 1},
                      {.id = 3, .tenant = 1, .submit = 2},
                      {.id = 4, .tenant = 2, .submit = 3},
                      {.id = 5, .tenant = 2, .submit = 4},
                      {.id = 6, .tenant = 2, .submit = 5}},
             .start = {1, 4, 2, 5}},
        Case{.name = "fair_share_preempts_over_share",
             .policy = "fair-share",
             .jobs = {{.id = 1, .tenant = 1, .start = 0},
                      {.id = 2, .tenant = 1, .start = 10},
                      {.id = 3, .tenant = 1, .start = 20},
                      {.id = 4, .tenant = 1, .start = 30},
                      {.id = 5, .tenant = 2, .submit = 900}},
             .start = {},
             .preempt = {4}},
        // las: a job with less attained service preempts one past the first threshold.
        Case{.name = "las_new_job_preempts_old",
             .policy = "las",
             .gpus = 1,
             .jobs = {{.id = 1, .start = 0}, {.id = 2, .submit = 3000}},
             .now = 4000,
             .preempt = {1}},
        Case{.name = "las_same_queue_no_preemption",
             .policy = "las",
             .gpus = 1,
             .jobs = {{.id = 1, .start = 0}, {.id = 2, .submit = 100}},
             .now = 200,
             .preempt = {}},
        Case{.name = "las_work_conserving",
             .policy = "las",
             .gpus = 4,
             .jobs = {{.id = 1, .gpus = 3, .start = 0},
                      {.id = 2, .gpus = 2, .submit = 1},
                      {.id = 3, .gpus = 1, .submit = 2}},
             .now = 50,
             .start = {3}},
        Case{
            .name = "srtf_shorter_preempts",
            .policy = "oracle-srtf",
            .gpus = 1,
            .jobs = {{.id = 1, .start = 0, .oracle = 1000}, {.id = 2, .submit = 100, .oracle = 50}},
            .now = 100,
            .preempt = {1}},
        Case{.name = "srtf_orders_by_remaining",
             .policy = "oracle-srtf",
             .gpus = 1,
             .jobs = {{.id = 1, .submit = 0, .oracle = 500}, {.id = 2, .submit = 1, .oracle = 50}},
             .now = 10,
             .start = {2}}),
    [](const auto& info) { return info.param.name; });

TEST(Framework, FairShareSaysWhichJobItDrainsFor) {
  Case c{.policy = "fair-share", .nodes = 2, .jobs = DrainSnapshot()};
  auto s = Build(c);
  CycleResult r = s->Schedule(1000, true);
  std::map<int64_t, std::string> why;
  for (const auto& w : r.wait) why[w.job_id] = w.reason;
  EXPECT_THAT(why[7], HasSubstr("nodes are being drained for below-share job 10, reserved to "
                                "start in 3100 s"));
}

// Fragmented GPUs: two nodes of 4, 3 GPUs free on node 0 beside tenant 3's 1-GPU job 3, 1 free
// on node 1 beside tenant 2's job 2. Every tenant gets what it asks (8 GPUs, 8 asked), so no
// tenant is above its entitlement and no job may be preempted for below-share tenant 4's
// whole-node job 4; but job 3 can move to node 1.
std::unique_ptr<Scheduler> FragmentedForAWholeNodeJob(const std::string& move) {
  auto s =
      *NewScheduler({.policy = "fair-share", .params = {{"fair_share.move", move}}}, Nodes(2, 4));
  s->Enqueue(Request({.id = 1, .gpus = 3, .tenant = 1}), 0);
  s->Enqueue(Request({.id = 2, .gpus = 3, .tenant = 2}), 0);
  s->Enqueue(Request({.id = 3, .gpus = 1, .tenant = 3}), 0);
  auto r = s->Schedule(0, false);
  EXPECT_EQ(r.start.size(), 3u);
  EXPECT_EQ(r.start[2].tasks[0].node, 0) << "job 3 shares node 0 with job 1";
  s->Remove(1, 100, /*ended=*/true);
  s->Enqueue(Request({.id = 4, .gpus = 4, .tenant = 4, .submit = 1000}), 1000);
  return s;
}

TEST(Framework, FairShareMovesAJobToClearANodeForABelowShareTenant) {
  auto s = FragmentedForAWholeNodeJob("1");
  auto r = s->Schedule(1000, true);
  ASSERT_EQ(r.preempt.size(), 1u);
  EXPECT_EQ(r.preempt[0].job_id, 3);
  EXPECT_EQ(r.preempt[0].reason,
            "preempted for job 4 (moved: it can start again at once on another node)");
  s->Requeue(3, 1010);
  auto after = s->Schedule(1010, false);
  ASSERT_EQ(after.start.size(), 2u);
  EXPECT_EQ(after.start[0].job_id, 4);
  EXPECT_EQ(after.start[0].tasks[0].node, 0);
  EXPECT_EQ(after.start[1].job_id, 3);
  EXPECT_EQ(after.start[1].tasks[0].node, 1);
}

TEST(Framework, FairShareWithoutMovesDrainsInstead) {
  auto s = FragmentedForAWholeNodeJob("0");
  auto r = s->Schedule(1000, true);
  EXPECT_TRUE(r.preempt.empty());
  EXPECT_TRUE(r.start.empty());
}

TEST(Framework, FairShareMovesAJobIntoRoomItPreemptsAnOverShareJobFor) {
  // Three nodes of 4 GPUs. Node 0: 3 free beside tenant 3's job 2. Nodes 1 and 2: tenant 2's
  // 1-GPU jobs, one of each node not preemptible. Tenant 2 holds 8 of its entitled 7 (12 GPUs
  // over demands 8, 1 and 4); its jobs may be preempted for tenant 4, but no node clears of
  // them. Job 2 moves to node 1 in the room of tenant 2's cheapest job there (4).
  auto s = *NewScheduler({.policy = "fair-share"}, Nodes(3, 4));
  s->Enqueue(Request({.id = 1, .gpus = 3, .tenant = 1}), 0);
  s->Enqueue(Request({.id = 2, .gpus = 1, .tenant = 3}), 0);
  auto first = s->Schedule(0, false);
  ASSERT_EQ(first.start.size(), 2u);
  EXPECT_EQ(first.start[1].tasks[0].node, 0) << "job 2 shares node 0 with job 1";
  for (int64_t id = 3; id <= 10; ++id) {
    J j{.id = id, .tenant = 2, .preemptible = id != 3 && id != 7};
    s->Enqueue(Request(j), 0);
  }
  ASSERT_EQ(s->Schedule(0, false).start.size(), 8u);
  s->Remove(1, 100, /*ended=*/true);
  s->Enqueue(Request({.id = 11, .gpus = 4, .tenant = 4, .submit = 1000}), 1000);
  auto cycle = s->Schedule(1000, false);
  std::vector<int64_t> victims;
  for (const auto& p : cycle.preempt) victims.push_back(p.job_id);
  std::sort(victims.begin(), victims.end());
  EXPECT_THAT(victims, ElementsAre(2, 4));
  s->Requeue(2, 1010);
  s->Requeue(4, 1010);
  auto after = s->Schedule(1010, false);
  ASSERT_EQ(after.start.size(), 2u);
  EXPECT_EQ(after.start[0].job_id, 11);
  EXPECT_EQ(after.start[1].job_id, 2);  // tenant 3 now holds nothing: its turn comes first
  EXPECT_EQ(after.start[1].tasks[0].node, 1);
}

TEST(Framework, UnknownPolicyAndParameterAreRefusedByName) {
  auto bad = NewScheduler({.policy = "lottery"}, Nodes(1, 1));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("one of: backfill, fair-share"));
  auto param = NewScheduler({.policy = "fifo", .params = {{"las.thresholds", "1"}}}, Nodes(1, 1));
  ASSERT_FALSE(param.ok());
  EXPECT_THAT(std::string(param.status().message()),
              HasSubstr("unknown parameter 'las.thresholds'"));
  auto value = NewScheduler({.policy = "las", .params = {{"las.thresholds", "10,5"}}}, Nodes(1, 1));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(std::string(value.status().message()), HasSubstr("increasing"));
}

// A value out of a parameter's range is refused with the range, not clamped into it.
TEST(Framework, ParameterOutOfRangeIsRefusedWithItsRange) {
  struct Row {
    std::string policy, key, value, says;
  };
  for (const Row& r : std::vector<Row>{
           {"gittins", "gittins.neighbour_weight", "2", "must be a number from 0 to 1"},
           {"gittins", "gittins.neighbours", "2.5", "must be a whole number from 0 to 1000"},
           {"gittins", "gittins.neighbours", "-3", "must be a whole number from 0 to 1000"},
           {"gittins", "gittins.preempt_ratio", "0.5", "must be a number of at least 1"},
           {"gittins", "gittins.neighbour_spread", "0", "must be a number above 0"},
           {"gittins", "gittins.min_samples", "abc", "must be a whole number of at least 0"},
           {"fair-share", "fair_share.move", "2", "must be a whole number from 0 to 1"},
           {"priority", "preemption.min_runtime", "-5",
            "must be a number of at least 0 (seconds, or a duration such as 5m)"},
           {"backfill", "backfill.default_runtime", "0",
            "must be a number above 0 (seconds, or a duration such as 5m)"},
           // An empty list (or an empty item) once meant no thresholds: no preemption at all.
           {"las", "las.thresholds", "", "must be increasing positive numbers separated by commas"},
           {"las", "las.thresholds", "300,,3000",
            "must be increasing positive numbers separated by commas"},
           {"gittins", "gittins.thresholds", "300,",
            "must be increasing positive numbers separated by commas"},
           {"las", "las.thresholds", "300,inf",
            "must be increasing positive numbers separated by commas"},
       }) {
    auto s = NewScheduler({.policy = r.policy, .params = {{r.key, r.value}}}, Nodes(1, 1));
    ASSERT_FALSE(s.ok()) << r.key << "=" << r.value;
    // Read by two plugins, still reported once.
    EXPECT_EQ(std::string(s.status().message()), absl::StrCat(r.key, ": '", r.value, "' ", r.says));
  }
  // The ends of a range are taken, as is a duration where seconds are asked for.
  for (auto [policy, key, value] :
       std::vector<std::array<std::string, 3>>{{"gittins", "gittins.neighbour_weight", "1"},
                                               {"gittins", "gittins.neighbours", "1000"},
                                               {"gittins", "gittins.preempt_ratio", "1"},
                                               {"fair-share", "fair_share.move", "0"},
                                               {"priority", "preemption.min_runtime", "5m"},
                                               {"las", "las.thresholds", "5m, 1h"}}) {
    auto s = NewScheduler({.policy = policy, .params = {{key, value}}}, Nodes(1, 1));
    EXPECT_TRUE(s.ok()) << key << "=" << value << ": " << s.status();
  }
}

TEST(Framework, RegistryRefusesDuplicateNames) {
  PluginRegistry r;
  EXPECT_TRUE(r.AddSort("x", [](Params&) { return nullptr; }).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(r.AddSort("x", [](Params&) { return nullptr; })));
}

TEST(Framework, FairShareRebuildsItsUsageHistoryFromPastUse) {
  // One GPU, half-life 1 h. At 10,000 s tenants 1 and 2 each queue a job, tenant 1's first;
  // which starts depends on who used the GPU before (as dlabd rebuilds it when it starts).
  struct Row {
    std::string name;
    std::vector<std::tuple<int64_t, double, double>> past;  // (tenant, start, end)
    int64_t first;
  };
  for (const Row& r : std::vector<Row>{
           {"no past use: tenant 1's job, first in line", {}, 1},
           {"tenant 1 used it lately", {{1, 6400, 9400}}, 2},
           {"tenant 1 used it an hour before tenant 2 (0.25 against 0.5)",
            {{1, 2800, 6400}, {2, 6400, 10000}},
            1},
           {"tenant 1 held it longer, tenant 2 later (0.35 against 0.5)",
            {{1, 0, 6400}, {2, 6400, 10000}},
            1},
           {"tenant 1 in two stretches (0.15 + 0.29 against 0.21)",
            {{1, 4600, 6400}, {2, 6400, 8200}, {1, 8200, 10000}},
            2},
       }) {
    auto s = *NewScheduler({.policy = "fair-share", .params = {{"fair_share.half_life", "3600"}}},
                           Nodes(1, 1));
    std::vector<PastUse> past;
    for (auto [tenant, start, end] : r.past) {
      TaskAllocation gpu{.cpu_millis = 1000, .memory_bytes = 1LL << 30, .gpus = {0}};
      past.push_back({.tenant_id = tenant,
                      .tasks = {{.node = 0, .alloc = gpu}},
                      .start_s = start,
                      .end_s = end});
    }
    s->SetUsageHistory(past, 10000);
    s->Enqueue(Request({.id = 1, .tenant = 1, .submit = 10000}), 10000);
    s->Enqueue(Request({.id = 2, .tenant = 2, .submit = 10000}), 10000);
    auto cycle = s->Schedule(10000, false);
    ASSERT_EQ(cycle.start.size(), 1u) << r.name;
    EXPECT_EQ(cycle.start[0].job_id, r.first) << r.name;
  }
}

TEST(Framework, PackKeepsWholeNodesFreeAndGangsStayOnOneNode) {
  auto s = *NewScheduler({.policy = "fifo"}, Nodes(2, 4));
  s->Enqueue(Request({.id = 1, .gpus = 3}), 0);
  s->Enqueue(Request({.id = 2, .gpus = 1}), 0);
  s->Enqueue(Request({.id = 3, .gpus = 4}), 0);
  auto r = s->Schedule(0, false);
  ASSERT_EQ(r.start.size(), 3u);
  EXPECT_EQ(r.start[0].tasks[0].node, r.start[1].tasks[0].node);  // 1 GPU packed beside 3
  EXPECT_NE(r.start[2].tasks[0].node, r.start[0].tasks[0].node);
  // A gang of two 2-GPU tasks goes on one node when one node can take it.
  auto g = *NewScheduler({.policy = "fifo"}, Nodes(2, 4));
  JobRequest gang = Request({.id = 9});
  gang.tasks = {Resources{.gpus = 2}, Resources{.gpus = 2}};
  g->Enqueue(Request({.id = 8, .gpus = 1}), 0);
  g->Enqueue(gang, 0);
  auto rg = g->Schedule(0, false);
  ASSERT_EQ(rg.start.size(), 2u);
  EXPECT_EQ(rg.start[1].tasks[0].node, rg.start[1].tasks[1].node);
  EXPECT_NE(rg.start[1].tasks[0].node, rg.start[0].tasks[0].node);
}

TEST(CheckCanEverRun, AGangMaySpanNodesButATaskMustFitOne) {
  // Two nodes of 4 GPUs and 64 CPUs: 2 x 4 GPUs fits (one task per node), 1 x 8 never does.
  std::vector<NodeCapacity> two = Nodes(2, 4);
  EXPECT_TRUE(CheckCanEverRun({Resources{.gpus = 4}, Resources{.gpus = 4}}, two).ok());
  EXPECT_EQ(CheckCanEverRun({Resources{.gpus = 8}}, two).message(),
            "resources.gpus: 8 GPUs requested, but the largest node has 4");
  EXPECT_EQ(CheckCanEverRun({Resources{.gpus = 4}, Resources{.gpus = 4}, Resources{.gpus = 1}}, two)
                .message(),
            "tasks: the 3 tasks do not fit on the cluster's 2 nodes together");
  EXPECT_THAT(std::string(CheckCanEverRun({Resources{.cpu_millis = 65000}}, two).message()),
              HasSubstr("resources.cpus"));
  // A task that fits only the smaller of two unlike nodes.
  std::vector<NodeCapacity> unlike = Nodes(1, 8, "A100");
  unlike.push_back(Nodes(1, 2, "T4")[0]);
  EXPECT_TRUE(CheckCanEverRun({Resources{.gpus = 2, .gpu_type = "T4"}}, unlike).ok());
  // One node: the gang's totals against it, as before.
  EXPECT_THAT(
      std::string(
          CheckCanEverRun({Resources{.gpus = 4}, Resources{.gpus = 4}}, Nodes(1, 4)).message()),
      HasSubstr("2 tasks need 8 GPUs in total"));
}

TEST(Framework, SpreadPutsJobsOnTheEmptiestNode) {
  auto s = *NewScheduler({.policy = "fifo", .params = {{"score", "spread"}}}, Nodes(2, 4));
  s->Enqueue(Request({.id = 1, .gpus = 1}), 0);
  s->Enqueue(Request({.id = 2, .gpus = 1}), 0);
  auto r = s->Schedule(0, false);
  ASSERT_EQ(r.start.size(), 2u);
  EXPECT_NE(r.start[0].tasks[0].node, r.start[1].tasks[0].node);
}

TEST(Framework, GpuTypeListAcceptsAnyNamedType) {
  std::vector<NodeCapacity> nodes = Nodes(1, 2, "V100");
  auto more = Nodes(1, 2, "A10");
  nodes.push_back(more[0]);
  auto s = *NewScheduler({.policy = "fifo"}, nodes);
  JobRequest a = Request({.id = 1, .gpus = 2});
  a.tasks[0].gpu_type = "T4,A10";
  JobRequest b = Request({.id = 2, .gpus = 1});
  b.tasks[0].gpu_type = "A10";
  s->Enqueue(a, 0);
  s->Enqueue(b, 1);
  auto r = s->Schedule(1, true);
  ASSERT_EQ(r.start.size(), 1u);
  EXPECT_EQ(r.start[0].tasks[0].node, 1);
  ASSERT_EQ(r.wait.size(), 1u);
  EXPECT_THAT(r.wait[0].reason, HasSubstr("waiting for resources: needs 1 A10 GPUs"));
}

TEST(Framework, PreemptedJobWaitsForItsVictimThenStarts) {
  auto s = *NewScheduler({.policy = "priority"}, Nodes(1, 2));
  s->Enqueue(Request({.id = 1, .gpus = 2}), 0);
  s->Schedule(0, false);
  s->Enqueue(Request({.id = 2, .gpus = 2, .priority = 1}), 400);
  auto r = s->Schedule(400, true);
  ASSERT_EQ(r.preempt.size(), 1u);
  EXPECT_EQ(r.preempt[0].reason, "preempted for job 2 (priority 1 > 0)");
  // Until the victim has stopped, the job waits and nothing more is preempted.
  auto again = s->Schedule(401, true);
  EXPECT_TRUE(again.preempt.empty());
  EXPECT_EQ(again.wait[0].reason, "waiting for preempted job 1 to stop");
  s->Requeue(1, 420);
  auto after = s->Schedule(420, true);
  ASSERT_EQ(after.start.size(), 1u);
  EXPECT_EQ(after.start[0].job_id, 2);
  EXPECT_EQ(after.wait[0].job_id, 1);
}

TEST(Framework, AVictimThatCouldNotBeStoppedIsChosenAgain) {
  auto s = *NewScheduler({.policy = "priority"}, Nodes(1, 2));
  s->Enqueue(Request({.id = 1, .gpus = 2}), 0);
  s->Schedule(0, false);
  s->Enqueue(Request({.id = 2, .gpus = 2, .priority = 1}), 400);
  ASSERT_EQ(s->Schedule(400, false).preempt.size(), 1u);
  // dlabd could not record the preemption (a store error): job 1 runs on, job 2 stops waiting
  // for it, and the next cycle tries again.
  s->Unpreempt(1);
  auto again = s->Schedule(401, true);
  ASSERT_EQ(again.preempt.size(), 1u);
  EXPECT_EQ(again.preempt[0].job_id, 1);
  EXPECT_EQ(again.wait[0].reason, "preempting job 1 to make room");
}

TEST(Framework, AGangPreemptsOnlyForTheTasksThatDoNotFit) {
  // Two nodes of 4 GPUs: job 2 holds half of one, job 1 all of the other. A high-priority gang
  // of a 2-GPU and a 4-GPU task: the 2-GPU task fits beside job 2 as things are, so only job 1
  // (the cheaper victim too: it ran less) is preempted, for the 4-GPU task.
  auto s = *NewScheduler({.policy = "priority"}, Nodes(2, 4));
  s->Enqueue(Request({.id = 2, .gpus = 2}), 0);
  ASSERT_EQ(s->Schedule(0, false).start.size(), 1u);
  s->Enqueue(Request({.id = 1, .gpus = 4, .submit = 300}), 300);
  ASSERT_EQ(s->Schedule(300, false).start.size(), 1u);
  JobRequest gang = Request({.id = 3, .priority = 5, .submit = 700});
  gang.tasks = {Resources{.gpus = 2}, Resources{.gpus = 4}};
  s->Enqueue(gang, 700);
  auto r = s->Schedule(700, false);
  ASSERT_EQ(r.preempt.size(), 1u);
  EXPECT_EQ(r.preempt[0].job_id, 1);
  s->Requeue(1, 710);
  auto after = s->Schedule(710, false);
  ASSERT_EQ(after.start.size(), 1u);
  EXPECT_EQ(after.start[0].job_id, 3);
  EXPECT_NE(after.start[0].tasks[0].node, after.start[0].tasks[1].node);
}

// las on one node of `gpus` GPUs with the given queue thresholds and starvation factor,
// preempting without a minimum run time.
std::unique_ptr<Scheduler> LasAtOnce(const std::string& thresholds, const std::string& starvation,
                                     int gpus) {
  return *NewScheduler({.policy = "las",
                        .params = {{"las.thresholds", thresholds},
                                   {"las.starvation", starvation},
                                   {"preemption.min_runtime", "0"}}},
                       Nodes(1, gpus));
}

TEST(Framework, LasPromotesAStarvedJob) {
  // One GPU; job 1 ran 100 s and was preempted; with starvation 2 it is promoted after
  // waiting 200 s, and NextChange says when.
  auto s = LasAtOnce("50", "2", 1);
  s->Enqueue(Request({.id = 1}), 0);
  s->Schedule(0, false);
  s->Requeue(1, 100);  // attained 100 GPU-s: queue 1
  s->Enqueue(Request({.id = 2, .submit = 100}), 100);
  auto r = s->Schedule(100, false);
  ASSERT_EQ(r.start.size(), 1u);
  EXPECT_EQ(r.start[0].job_id, 2);
  ASSERT_TRUE(s->NextChange(100).has_value());
  EXPECT_DOUBLE_EQ(*s->NextChange(100), 150);  // job 2 reaches the 50 GPU-s threshold
  // At 300 job 1 has waited 200 s = 2 x its last run: promoted, it preempts job 2 (queue 1).
  auto p = s->Schedule(300, false);
  ASSERT_EQ(p.preempt.size(), 1u);
  EXPECT_EQ(p.preempt[0].job_id, 2);
}

TEST(Framework, APromotionDoesNotMakeAJobForgetTheVictimItWaitsFor) {
  // Two GPUs. Job 1 ran 100 s and waits in queue 1 (promotion due at 100 + 2 x 100 = 300). At
  // 250 jobs 3 and 4 are in queue 2, and job 1 preempts job 4. At 300, while job 4 still stops,
  // job 1's promotion falls due: it keeps waiting for job 4 and preempts nothing more.
  auto s = LasAtOnce("50,150", "2", 2);
  s->Enqueue(Request({.id = 1}), 0);
  s->Enqueue(Request({.id = 3}), 0);
  ASSERT_EQ(s->Schedule(0, false).start.size(), 2u);
  s->Requeue(1, 100);
  s->Enqueue(Request({.id = 4, .submit = 100}), 100);
  auto at100 = s->Schedule(100, false);
  ASSERT_EQ(at100.start.size(), 1u);
  EXPECT_EQ(at100.start[0].job_id, 4);
  EXPECT_TRUE(at100.preempt.empty());
  auto at250 = s->Schedule(250, false);
  ASSERT_EQ(at250.preempt.size(), 1u);
  EXPECT_EQ(at250.preempt[0].job_id, 4);
  auto at300 = s->Schedule(300, true);
  EXPECT_TRUE(at300.preempt.empty());
  ASSERT_EQ(at300.wait.size(), 1u);
  EXPECT_EQ(at300.wait[0].reason, "waiting for preempted job 4 to stop");
  s->Requeue(4, 310);
  auto at310 = s->Schedule(310, false);
  ASSERT_EQ(at310.start.size(), 1u);
  EXPECT_EQ(at310.start[0].job_id, 1);
}

TEST(Framework, AJobThatCouldNotBeLaunchedWaitsAsBefore) {
  // las, one GPU. Job 1 ran 100 s (queue 1; promoted against starvation at 100 + 100 x 100 s).
  // At 200 it is started again, but dlabd cannot launch it (no ports): Unstart puts it back as
  // it was. A fresh job then goes first; counting the moment as a run of 5 ms would have had
  // job 1 promoted (and its service forgiven) half a second later.
  auto s = LasAtOnce("50", "100", 1);
  s->Enqueue(Request({.id = 1}), 0);
  s->Schedule(0, false);
  s->Requeue(1, 100);
  auto again = s->Schedule(200, false);
  ASSERT_EQ(again.start.size(), 1u);
  s->Unstart(1);
  EXPECT_EQ(s->running(), 0u);
  EXPECT_EQ(s->queued(), 1u);
  s->Enqueue(Request({.id = 2, .submit = 200.5}), 200.5);
  auto r = s->Schedule(201, false);
  ASSERT_EQ(r.start.size(), 1u);
  EXPECT_EQ(r.start[0].job_id, 2);
}

TEST(Framework, LasPutsLessAttainedServiceFirstWithinAQueue) {
  // One GPU, one queue below 1000 GPU-s. Job 1 (submitted first) ran 100 s and came back to the
  // queue (e.g. its node failed); job 2, submitted later, has run nothing: it goes first.
  auto s = LasAtOnce("1000", "0", 1);
  s->Enqueue(Request({.id = 1}), 0);
  ASSERT_EQ(s->Schedule(0, false).start.size(), 1u);
  s->Enqueue(Request({.id = 2, .submit = 50}), 50);
  EXPECT_TRUE(s->Schedule(50, false).preempt.empty());  // the same queue: no preemption
  s->Requeue(1, 100);
  auto r = s->Schedule(100, false);
  ASSERT_EQ(r.start.size(), 1u);
  EXPECT_EQ(r.start[0].job_id, 2);
}

// gittins, one GPU: two queued jobs of tenant `tenant`, job 1 with 4,000 GPU-s from earlier
// attempts, job 2 fresh; which starts?
int64_t GittinsFirstOfTwo(const std::vector<std::pair<int64_t, double>>& ended, int64_t tenant) {
  auto s =
      *NewScheduler({.policy = "gittins", .params = {{"gittins.min_samples", "5"}}}, Nodes(1, 1));
  for (const auto& [t, gpu_s] : ended) s->RecordEnded(t, 1, gpu_s);
  s->Enqueue(Request({.id = 1, .tenant = tenant, .attained = 4000}), 0);
  s->Enqueue(Request({.id = 2, .tenant = tenant}), 0);
  auto r = s->Schedule(0, false);
  return r.start.size() == 1 ? r.start[0].job_id : -1;
}

TEST(Framework, GittinsOrdersByTheSizesOfEndedJobs) {
  std::vector<std::pair<int64_t, double>> fixed(5, {1, 5000});  // tenant 1's jobs need 5,000
  // Every job of its kind needed 5,000 GPU-s: the one with 4,000 is nearly done, so it goes
  // first (las would start the fresh one).
  EXPECT_EQ(GittinsFirstOfTwo(fixed, 1), 1);
  // Tenant 2 has no history of its own: everyone's sizes say the same.
  EXPECT_EQ(GittinsFirstOfTwo(fixed, 2), 1);
  // Fewer ended jobs than gittins.min_samples: the prior, least attained service first.
  EXPECT_EQ(GittinsFirstOfTwo({{1, 5000}}, 1), 2);
  // Tenant 1's jobs were mostly short and a few very long: one that has run 4,000 GPU-s is
  // likely one of the long ones, so the fresh job goes first, although everyone's sizes (with
  // tenant 3's) would say otherwise.
  std::vector<std::pair<int64_t, double>> tail(9, {1, 300});
  tail.push_back({1, 1e6});
  for (int i = 0; i < 30; ++i) tail.push_back({3, 5000});
  EXPECT_EQ(GittinsFirstOfTwo(tail, 1), 2);
  EXPECT_EQ(GittinsFirstOfTwo(tail, 3), 1);
}

TEST(Framework, GittinsLearnsOnlyFromJobsThatEnded) {
  // Four sizes of 5,000 GPU-s, one short of gittins.min_samples (5). Job 9 runs 5,000 s: when it
  // ended, the class has its five sizes and the job with 4,000 attained goes first (as in
  // GittinsOrdersByTheSizesOfEndedJobs); when its attempt failed and will be retried, or it was
  // started but never launched, nothing is learnt and the prior puts the fresh job first.
  for (bool ended : {true, false}) {
    auto s =
        *NewScheduler({.policy = "gittins", .params = {{"gittins.min_samples", "5"}}}, Nodes(1, 1));
    for (int i = 0; i < 4; ++i) s->RecordEnded(1, 1, 5000);
    s->Enqueue(Request({.id = 9}), 0);
    ASSERT_EQ(s->Schedule(0, false).start.size(), 1u);
    s->Remove(9, 5000, ended);
    s->Enqueue(Request({.id = 1, .submit = 5000, .attained = 4000}), 5000);
    s->Enqueue(Request({.id = 2, .submit = 5000}), 5000);
    auto r = s->Schedule(5000, false);
    ASSERT_EQ(r.start.size(), 1u);
    EXPECT_EQ(r.start[0].job_id, ended ? 1 : 2) << ended;
  }
}

// gittins, one GPU, tenants 1 and 2 alike (half their jobs needed 300 GPU-s, half 30,000):
// tenant 1's job 1 runs; tenant 1's job 2 and tenant 2's job 3 queue behind it; job 1 ends
// after 30,000 s. Which starts next?
int64_t GittinsAfterALongNeighbour(const std::string& neighbours) {
  auto s =
      *NewScheduler({.policy = "gittins",
                     .params = {{"gittins.min_samples", "5"}, {"gittins.neighbours", neighbours}}},
                    Nodes(1, 1));
  for (int64_t tenant : {1, 2}) {
    for (int i = 0; i < 10; ++i) s->RecordEnded(tenant, 1, 300);
    for (int i = 0; i < 10; ++i) s->RecordEnded(tenant, 1, 30000);
  }
  s->Enqueue(Request({.id = 1, .tenant = 1}), 0);
  if (s->Schedule(0, false).start.size() != 1) return -1;
  s->Enqueue(Request({.id = 2, .tenant = 1, .submit = 10}), 10);
  s->Enqueue(Request({.id = 3, .tenant = 2, .submit = 20}), 20);
  s->Remove(1, 30000, /*ended=*/true);
  auto r = s->Schedule(30000, false);
  return r.start.size() == 1 ? r.start[0].job_id : -1;
}

TEST(Framework, GittinsLearnsFromTheJobsSubmittedJustBefore) {
  // Job 2 was submitted right after job 1, which turned out long: job 2 likely is too, so
  // tenant 2's job goes first. (Job 2 was queued before job 1 ended: its key follows.)
  EXPECT_EQ(GittinsAfterALongNeighbour("5"), 3);
  // Without neighbours the two are alike: FIFO.
  EXPECT_EQ(GittinsAfterALongNeighbour("0"), 2);
}

TEST(Framework, GittinsPreemptsAJobThatOutlivedTheShortOnes) {
  auto s =
      *NewScheduler({.policy = "gittins", .params = {{"gittins.min_samples", "5"}}}, Nodes(1, 1));
  for (int i = 0; i < 9; ++i) s->RecordEnded(1, 1, 300);
  s->RecordEnded(1, 1, 1e6);
  s->Enqueue(Request({.id = 1}), 0);
  ASSERT_EQ(s->Schedule(0, false).start.size(), 1u);
  // At 200 s job 1 may still be one of the short ones: a new job does not preempt it.
  s->Enqueue(Request({.id = 2, .submit = 200}), 200);
  EXPECT_TRUE(s->Schedule(200, false).preempt.empty());
  // At 2,000 s it can only be the long one.
  auto r = s->Schedule(2000, false);
  ASSERT_EQ(r.preempt.size(), 1u);
  EXPECT_EQ(r.preempt[0].job_id, 1);
  EXPECT_THAT(r.preempt[0].reason, HasSubstr("Gittins index"));
}

TEST(Framework, QueueEstimatesAPreemptionOnceTheVictimHasRunItsMinimumTime) {
  // low (priority 0, may run 600 s) started at 0; urgent (priority 1) cannot preempt it before
  // it has run 15 s, so it starts at 15, not when low would end.
  auto s = *NewScheduler({.policy = "priority", .params = {{"preemption.min_runtime", "15"}}},
                         Nodes(1, 2));
  JobRequest low = Request({.id = 1, .gpus = 2});
  low.max_runtime_s = 600;
  s->Enqueue(low, 0);
  ASSERT_EQ(s->Schedule(0, false).start.size(), 1u);
  s->Enqueue(Request({.id = 2, .gpus = 2, .priority = 1, .submit = 5}), 5);
  auto q = s->Queue(5, 60);
  ASSERT_EQ(q.size(), 1u);
  ASSERT_TRUE(q[0].estimated_start_s.has_value());
  EXPECT_DOUBLE_EQ(*q[0].estimated_start_s, 15);
}

TEST(Framework, QueueEstimatesStartsFromMaxRuntime) {
  auto s = *NewScheduler({.policy = "fifo"}, Nodes(1, 2));
  JobRequest a = Request({.id = 1, .gpus = 2});
  a.max_runtime_s = 600;
  s->Enqueue(a, 0);
  s->Schedule(0, false);
  JobRequest b = Request({.id = 2, .gpus = 2, .submit = 10});
  b.max_runtime_s = 300;
  s->Enqueue(b, 10);
  s->Enqueue(Request({.id = 3, .gpus = 1, .submit = 20}), 20);
  s->Enqueue(Request({.id = 4, .gpus = 1, .tenant = 2, .submit = 30}), 30);
  auto q = s->Queue(100, 60);
  ASSERT_EQ(q.size(), 3u);
  // Tenant 2 cannot look job 2 up, so its reason says whose it is not.
  EXPECT_EQ(q[2].reason, "waiting behind job 2 of another tenant (FIFO order)");
  EXPECT_EQ(q[0].job_id, 2);
  EXPECT_THAT(q[0].reason, HasSubstr("waiting for resources: needs 2 GPUs (free 0)"));
  ASSERT_TRUE(q[0].estimated_start_s.has_value());
  EXPECT_DOUBLE_EQ(*q[0].estimated_start_s, 600);
  EXPECT_EQ(q[1].reason, "waiting behind job 2 (FIFO order)");
  ASSERT_TRUE(q[1].estimated_start_s.has_value());
  EXPECT_DOUBLE_EQ(*q[1].estimated_start_s, 900);
  // Queue() looks ahead on a copy: the real queue is unchanged.
  EXPECT_EQ(s->queued(), 3u);
  EXPECT_EQ(s->running(), 1u);
}

TEST(Framework, QueueExpectsAJobWaitingForItsVictimToStartOnceTheVictimStops) {
  // Job 2 preempted job 1 at 400; at 410 job 1 is still stopping. The forecast counts job 1 as
  // gone at once (it was given its grace period), not as running to its max runtime.
  auto s = *NewScheduler({.policy = "priority"}, Nodes(1, 1));
  JobRequest victim = Request({.id = 1});
  victim.max_runtime_s = 10000;
  s->Enqueue(victim, 0);
  s->Schedule(0, false);
  s->Enqueue(Request({.id = 2, .priority = 5, .submit = 400}), 400);
  ASSERT_EQ(s->Schedule(400, false).preempt.size(), 1u);
  auto q = s->Queue(410, 60);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].reason, "waiting for preempted job 1 to stop");
  ASSERT_TRUE(q[0].estimated_start_s.has_value());
  EXPECT_DOUBLE_EQ(*q[0].estimated_start_s, 410);
}

TEST(Framework, QueueForecastStopsAtItsBudget) {
  auto s = *NewScheduler({.policy = "fifo"}, Nodes(1, 1));
  for (int id = 1; id <= 3; ++id) {
    JobRequest r = Request({.id = id, .submit = static_cast<double>(id)});
    r.max_runtime_s = 100;
    s->Enqueue(r, id);
  }
  auto all = s->Queue(10, 60);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].estimated_start_s, std::optional<double>(10));  // starts in this cycle
  EXPECT_EQ(all[1].estimated_start_s, std::optional<double>(110));
  EXPECT_EQ(all[2].estimated_start_s, std::optional<double>(210));
  // No time to look ahead: only what this cycle starts is known; the order and reasons are
  // the same.
  auto none = s->Queue(10, 0);
  ASSERT_EQ(none.size(), 3u);
  EXPECT_EQ(none[0].estimated_start_s, std::optional<double>(10));
  EXPECT_FALSE(none[1].estimated_start_s.has_value());
  EXPECT_FALSE(none[2].estimated_start_s.has_value());
  EXPECT_EQ(none[2].reason, all[2].reason);
}

TEST(Framework, CloneSchedulesOnItsOwn) {
  auto s = *NewScheduler(
      {.policy = "gittins", .params = {{"gittins.min_samples", "1"}, {"gittins.neighbours", "2"}}},
      Nodes(1, 1));
  s->RecordEnded(1, 1, 500);
  s->Enqueue(Request({.id = 1}), 0);
  s->Enqueue(Request({.id = 2, .submit = 1}), 1);
  std::unique_ptr<Scheduler> copy = s->Clone();
  auto r = copy->Schedule(1, false);
  ASSERT_EQ(r.start.size(), 1u);
  EXPECT_EQ(r.start[0].job_id, 1);
  EXPECT_EQ(copy->running(), 1u);
  // The original has not started anything, and decides as the copy did.
  EXPECT_EQ(s->running(), 0u);
  EXPECT_EQ(s->queued(), 2u);
  r = s->Schedule(1, false);
  ASSERT_EQ(r.start.size(), 1u);
  EXPECT_EQ(r.start[0].job_id, 1);
}

// The victim is the job that loses the least work: GPU-seconds since its attempt started, or
// since the checkpoint it saved after that.
TEST(Framework, VictimLosesTheLeastWorkSinceItsCheckpoint) {
  struct Row {
    std::string name;
    std::vector<std::pair<int64_t, double>> checkpoints;  // (job, time)
    int64_t victim;
  };
  for (const Row& r : std::vector<Row>{
           {"no checkpoints: the latest start", {}, 2},
           {"job 1 saved at 900: it loses 100 s, job 2 800 s", {{1, 900}}, 1},
           {"both saved: job 2 later", {{1, 700}, {2, 800}}, 2},
           {"a checkpoint of a queued job is ignored", {{3, 950}}, 2},
           {"a checkpoint before the attempt's start counts from the start", {{2, 50}}, 2},
       }) {
    auto s = *NewScheduler({.policy = "priority", .params = {{"preemption.min_runtime", "60"}}},
                           Nodes(1, 2));
    s->Enqueue(Request({.id = 1}), 0);
    s->Schedule(0, false);
    s->Enqueue(Request({.id = 2, .submit = 100}), 100);
    s->Schedule(100, false);
    s->Enqueue(Request({.id = 3, .priority = 5, .submit = 1000}), 1000);
    for (auto [job, time] : r.checkpoints) s->Checkpointed(job, time);
    auto cycle = s->Schedule(1000, false);
    ASSERT_EQ(cycle.preempt.size(), 1u) << r.name;
    EXPECT_EQ(cycle.preempt[0].job_id, r.victim) << r.name;
  }
}

TEST(Framework, JobsAddedRunningAfterARestartArePreemptible) {
  // dlabd restarted: it hands the scheduler the attempts it found running. They are candidates
  // like jobs the scheduler started itself, the latest start first; once one ends, the other.
  auto s = *NewScheduler({.policy = "priority", .params = {{"preemption.min_runtime", "60"}}},
                         Nodes(1, 2));
  for (auto [id, start, gpu] : {std::tuple{1, 0.0, 0}, std::tuple{2, 100.0, 1}}) {
    TaskAllocation on{.cpu_millis = 1000, .memory_bytes = 1LL << 30, .gpus = {gpu}};
    s->AddRunning(Request({.id = id}), {{.node = 0, .alloc = on}}, start);
  }
  s->Enqueue(Request({.id = 3, .priority = 5, .submit = 1000}), 1000);
  auto first = s->Schedule(1000, false);
  ASSERT_EQ(first.preempt.size(), 1u);
  EXPECT_EQ(first.preempt[0].job_id, 2);
  s->Remove(2, 1010, /*ended=*/true);
  auto started = s->Schedule(1010, false);
  ASSERT_EQ(started.start.size(), 1u);
  EXPECT_EQ(started.start[0].job_id, 3);
  s->Enqueue(Request({.id = 4, .priority = 5, .submit = 1020}), 1020);
  auto second = s->Schedule(1020, false);
  ASSERT_EQ(second.preempt.size(), 1u);
  EXPECT_EQ(second.preempt[0].job_id, 1);
}

TEST(Framework, QueueAndCycleFindTheSameVictims) {
  // Queue() looks ahead on a copy of the scheduler, which lists its own running jobs as
  // preemption candidates; the original's list stays as it was.
  auto s = *NewScheduler({.policy = "priority", .params = {{"preemption.min_runtime", "60"}}},
                         Nodes(2, 2));
  s->Enqueue(Request({.id = 1, .gpus = 2}), 0);
  s->Enqueue(Request({.id = 2, .gpus = 1, .submit = 1}), 1);
  ASSERT_EQ(s->Schedule(1, false).start.size(), 2u);
  s->Enqueue(Request({.id = 3, .gpus = 2, .priority = 5, .submit = 100}), 100);
  for (int look = 0; look < 2; ++look) {
    auto q = s->Queue(100, 60);
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(q[0].reason, "preempting job 2 to make room");  // the least work lost
  }
  auto r = s->Schedule(100, false);
  ASSERT_EQ(r.preempt.size(), 1u);
  EXPECT_EQ(r.preempt[0].job_id, 2);
  s->Requeue(2, 110);
  r = s->Schedule(110, false);
  ASSERT_EQ(r.start.size(), 1u);
  EXPECT_EQ(r.start[0].job_id, 3);
}

TEST(Framework, QuotaHoldsATenantBackWithoutBlockingOthers) {
  auto s = *NewScheduler({.policy = "fifo"}, Nodes(1, 4));
  s->SetQuotas({{1, TenantQuota{.gpus = 1}}});
  s->Enqueue(Request({.id = 1, .tenant = 1}), 0);
  s->Enqueue(Request({.id = 2, .tenant = 1, .submit = 1}), 1);
  s->Enqueue(Request({.id = 3, .tenant = 2, .submit = 2}), 2);
  auto r = s->Schedule(2, true);
  ASSERT_EQ(r.start.size(), 2u);
  EXPECT_EQ(r.start[1].job_id, 3);
  ASSERT_EQ(r.wait.size(), 1u);
  EXPECT_EQ(r.wait[0].reason, "tenant quota: gpus: needs 1, 1 of 1 in use");
}

}  // namespace
}  // namespace dlab
