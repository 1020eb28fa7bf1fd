#include "sim/sim_cli.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/testing/temp_dir.h"
#include "nlohmann/json.hpp"
#include "sched/framework.h"

namespace dlab::sim {
namespace {

struct CliRun {
  int status = 0;
  std::string out, err;
};

CliRun RunCli(std::vector<std::string> args) {
  args.insert(args.begin(), "dlab-sim");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  CliRun run;
  run.status = RunSimCli(static_cast<int>(argv.size()), argv.data(), out, err);
  run.out = out.str();
  run.err = err.str();
  return run;
}

// The --json report of a run that must succeed; null (and a test failure) otherwise.
nlohmann::json RunJson(std::vector<std::string> args) {
  args.push_back("--json");
  CliRun run = RunCli(std::move(args));
  if (run.status != 0) {
    ADD_FAILURE() << run.err;
    return nullptr;
  }
  return nlohmann::json::parse(run.out);
}

class SimCliTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = (dir_.path() / name).string();
    std::ofstream(path) << text;
    return path;
  }
  // The FIFO example of simulator_test.cc: A (0 s, 4 GPUs, 100 s), B (10 s, 2, 50 s), C (20 s,
  // 2, 30 s) on 4 GPUs.
  // The --per-job file of a run that must succeed.
  std::string PerJob(const std::string& trace, const std::string& cluster) {
    std::string csv = (dir_.path() / "per-job.csv").string();
    CliRun run = RunCli({"--trace", trace, "--cluster", cluster, "--per-job", csv});
    EXPECT_EQ(run.status, 0) << run.err;
    std::ifstream in(csv);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::string Abc() {
    return Write("abc.csv",
                 "job_id,submit_s,num_gpus,duration_s\nA,0,4,100\nB,10,2,50\nC,20,2,30\n");
  }

  testing::TempDir dir_;
};

TEST_F(SimCliTest, WritesEveryJobsOutcome) {
  // The textbook FIFO answer: B and C start together when A ends.
  EXPECT_EQ(PerJob(Abc(), "1x4"),
            "job_id,tenant,gpus,priority,submit_s,duration_s,start_s,end_s,jct_s,queue_s,"
            "preemptions\n"
            "A,default,4,0,0,100,0,100,100,0,0\n"
            "B,default,2,0,10,50,100,150,140,90,0\n"
            "C,default,2,0,20,30,100,130,110,80,0\n");
  // A file that cannot be written fails the run, naming it.
  CliRun bad = RunCli({"--trace", Abc(), "--cluster", "1x4", "--per-job",
                       (dir_.path() / "missing" / "jobs.csv").string()});
  EXPECT_EQ(bad.status, kSimExitFailure);
  EXPECT_NE(bad.err.find("missing/jobs.csv"), std::string::npos) << bad.err;
}

TEST_F(SimCliTest, PrintsOneJsonObject) {
  nlohmann::json j = RunJson({"--trace", Abc(), "--cluster", "1x4", "--policy", "fifo"});
  EXPECT_EQ(j["jobs"], 3);
  EXPECT_EQ(j["skipped"], 0);
  EXPECT_DOUBLE_EQ(j["avg_jct_s"].get<double>(), 350.0 / 3);
  EXPECT_EQ(j["p50_jct_s"], 110.0);
  EXPECT_EQ(j["p99_jct_s"], 140.0);
  EXPECT_DOUBLE_EQ(j["avg_queue_s"].get<double>(), 170.0 / 3);
  EXPECT_EQ(j["makespan_s"], 150.0);
  EXPECT_DOUBLE_EQ(j["gpu_utilization"].get<double>(), 14.0 / 15);
  EXPECT_EQ(j["preemptions"], 0);
  EXPECT_EQ(j["fairness_min"], 1.0);
  EXPECT_EQ(j["fairness_max_over_min"], 1.0);
  EXPECT_EQ(j["fairness_min_one_job"], 1.0);
  EXPECT_EQ(j["fairness_grace_s"], 0.0);  // fifo never preempts
  EXPECT_EQ(j["utilization_over_time"].size(), 50u);
  EXPECT_EQ(j["policy"], "fifo");
  EXPECT_EQ(j["cluster_gpus"], 4);
  EXPECT_TRUE(j["sim_wall_s"].is_number());
}

TEST_F(SimCliTest, SelectsJobsAndShiftsTheirSubmitTimes) {
  // B and C alone, B arriving at 0 and C at 10: both fit at once; B ends 50, C 40.
  nlohmann::json j = RunJson({"--trace", Abc(), "--cluster", "1x4", "--jobs", "1:2"});
  EXPECT_EQ(j["jobs"], 2);
  EXPECT_EQ(j["avg_jct_s"], 40.0);
  EXPECT_EQ(j["makespan_s"], 50.0);
  // Submitted in [10, 30): B and C again.
  EXPECT_EQ(RunJson({"--trace", Abc(), "--cluster", "1x4", "--window", "10:30"})["avg_jct_s"],
            40.0);
}

TEST_F(SimCliTest, TwoRunsGiveTheSameReport) {
  // 300 jobs of 1-8 GPUs from a fixed generator, 3 tenants, on 2 nodes of 4, under every policy.
  std::string csv = "job_id,submit_s,num_gpus,duration_s,tenant\n";
  uint64_t x = 12345;
  auto next = [&x](uint64_t n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return (x >> 33) % n;
  };
  for (int i = 0; i < 300; ++i) {
    uint64_t submit = i * 7 + next(5), gpus = 1 + next(8), duration = 10 + next(500);
    uint64_t tenant = next(3);
    csv += std::to_string(i) + "," + std::to_string(submit) + "," + std::to_string(gpus) + "," +
           std::to_string(duration) + ",t" + std::to_string(tenant) + "\n";
  }
  std::string trace = Write("random.csv", csv);
  for (const std::string& policy : PolicyNames()) {
    std::vector<std::string> args = {"--trace", trace, "--cluster", "2x4", "--policy", policy};
    nlohmann::json a = RunJson(args), b = RunJson(args);
    for (const char* wall : {"sim_wall_s", "scheduler_wall_s"}) {
      a.erase(wall);
      b.erase(wall);
    }
    EXPECT_EQ(a.dump(), b.dump()) << policy;
    EXPECT_EQ(a["jobs"], 300) << policy;
    EXPECT_EQ(a["finished"], 300) << policy;
  }
  // The fairness measure's grace is the policy's minimum run time before preemption.
  nlohmann::json fair = RunJson({"--trace", trace, "--cluster", "2x4", "--policy", "fair-share",
                                 "--param", "preemption.min_runtime=120"});
  EXPECT_EQ(fair["fairness_grace_s"], 120.0);
  // Written as a duration, as the scheduler also reads it.
  EXPECT_EQ(RunJson({"--trace", trace, "--cluster", "2x4", "--policy", "fair-share", "--param",
                     "preemption.min_runtime=2m"})["fairness_grace_s"],
            120.0);
  EXPECT_EQ(
      RunJson({"--trace", trace, "--cluster", "2x4", "--policy", "fair-share"})["fairness_grace_s"],
      300.0);
}

TEST_F(SimCliTest, PrintsReadableTextByDefault) {
  CliRun run = RunCli({"--trace", Abc(), "--cluster", "1x4"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("JCT               avg 116.7 s, p50 110.0 s, p99 140.0 s"),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("GPU utilization   93.3%"), std::string::npos) << run.out;
}

TEST_F(SimCliTest, UsageErrorsExitWith2) {
  std::string trace = Abc();
  CliRun bad_cluster = RunCli({"--trace", trace, "--cluster", "4x"});
  EXPECT_EQ(bad_cluster.status, kSimExitUsage);
  EXPECT_NE(bad_cluster.err.find("--cluster: expected NODESxGPUS[:TYPE]"), std::string::npos);
  CliRun bad_jobs = RunCli({"--trace", trace, "--cluster", "1x4", "--jobs", "5"});
  EXPECT_EQ(bad_jobs.status, kSimExitUsage);
  EXPECT_NE(bad_jobs.err.find("--jobs: expected FIRST:COUNT"), std::string::npos);
  CliRun both = RunCli({"--trace", trace, "--cluster", "1x4", "--jobs", "0:1", "--window", "0:10"});
  EXPECT_EQ(both.status, kSimExitUsage);
  CliRun no_trace = RunCli({"--cluster", "1x4"});
  EXPECT_EQ(no_trace.status, kSimExitUsage);
  CliRun bad_weights =
      RunCli({"--trace", trace, "--cluster", "1x4", "--param", "weights=nobody:2"});
  EXPECT_EQ(bad_weights.status, kSimExitUsage);
  EXPECT_NE(bad_weights.err.find("no tenant 'nobody' among the simulated jobs (tenants: default)"),
            std::string::npos)
      << bad_weights.err;
}

TEST_F(SimCliTest, UnknownParametersAndPoliciesListWhatIsKnown) {
  CliRun run = RunCli(
      {"--trace", Abc(), "--cluster", "1x4", "--policy", "oracle-srtf", "--param", "bogus=1"});
  EXPECT_EQ(run.status, kSimExitUsage);
  EXPECT_NE(run.err.find("bogus"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("parameters of oracle-srtf: "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("preemption.min_runtime (default 0)"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("restart_cost (default 30)"), std::string::npos) << run.err;
  CliRun policy = RunCli({"--trace", Abc(), "--cluster", "1x4", "--policy", "lottery"});
  EXPECT_EQ(policy.status, kSimExitUsage);
  EXPECT_NE(policy.err.find("policies: "), std::string::npos) << policy.err;
  EXPECT_NE(policy.err.find("oracle-srtf"), std::string::npos) << policy.err;
  CliRun restart = RunCli({"--trace", Abc(), "--cluster", "1x4", "--param", "restart_cost=-1"});
  EXPECT_EQ(restart.status, kSimExitUsage);
  EXPECT_NE(restart.err.find("--param restart_cost=-1: expected a number of seconds"),
            std::string::npos);
}

TEST_F(SimCliTest, ASelectionWithNothingToSimulateIsAnError) {
  std::string trace = Abc();
  CliRun past = RunCli({"--trace", trace, "--cluster", "1x4", "--jobs", "3:1"});
  EXPECT_EQ(past.status, kSimExitUsage);
  EXPECT_EQ(past.err, "dlab-sim: --jobs 3:1: the trace has 3 jobs, 0 to 2\n");
  CliRun late = RunCli({"--trace", trace, "--cluster", "1x4", "--window", "100:200"});
  EXPECT_EQ(late.status, kSimExitUsage);
  EXPECT_EQ(late.err,
            "dlab-sim: --window 100:200: no job was submitted then (the trace's jobs were "
            "submitted from 0 to 20 s)\n");
  // Running past the end simulates what there is and says so.
  CliRun short_range = RunCli({"--trace", trace, "--cluster", "1x4", "--jobs", "1:5", "--json"});
  EXPECT_EQ(short_range.status, 0) << short_range.err;
  EXPECT_EQ(short_range.err,
            "dlab-sim: --jobs 1:5: the trace has 3 jobs; simulating the 2 from 1\n");
  EXPECT_EQ(nlohmann::json::parse(short_range.out)["jobs"], 2);
  // Every job left out: no averages of nothing.
  CliRun none = RunCli({"--trace", trace, "--cluster", "1x2", "--jobs", "0:1"});
  EXPECT_EQ(none.status, kSimExitUsage);
  EXPECT_EQ(none.err,
            "dlab-sim: no job to simulate: of the 1 selected, 1 could never run on this cluster "
            "(first: job A: needs 4 GPUs, the cluster has 2) and 0 have no duration\n")
      << none.err;
  // A 2-GPU job with no GPU of its type anywhere (it used to split into gangs forever).
  std::string typed =
      Write("typed.csv", "job_id,submit_s,num_gpus,duration_s,gpu_type\na,0,2,10,A100\n");
  CliRun no_type = RunCli({"--trace", typed, "--cluster", "2x1:H100"});
  EXPECT_EQ(no_type.status, kSimExitUsage);
  EXPECT_NE(no_type.err.find("job a: needs 2 A100 GPUs, the cluster has 0"), std::string::npos)
      << no_type.err;
}

TEST_F(SimCliTest, EachParameterAndTenantWeightIsGivenOnce) {
  std::string trace = Abc();
  CliRun twice = RunCli({"--trace", trace, "--cluster", "1x4", "--param", "restart_cost=5",
                         "--param", "restart_cost=10"});
  EXPECT_EQ(twice.status, kSimExitUsage);
  EXPECT_EQ(twice.err,
            "dlab-sim: --param restart_cost=10: restart_cost is given twice; give each parameter "
            "once\n");
  CliRun tenant =
      RunCli({"--trace", trace, "--cluster", "1x4", "--param", "weights=default:1,default:2"});
  EXPECT_EQ(tenant.status, kSimExitUsage);
  EXPECT_NE(tenant.err.find("tenant 'default' twice"), std::string::npos) << tenant.err;
  // The weights a run used are in its report.
  nlohmann::json j =
      RunJson({"--trace", trace, "--cluster", "1x4", "--param", "weights=default:2.5"});
  EXPECT_EQ(j["weights"], nlohmann::json({{"default", 2.5}}));
  CliRun text = RunCli({"--trace", trace, "--cluster", "1x4", "--param", "weights=default:2.5"});
  EXPECT_NE(text.out.find("policy            fifo weights=default:2.5 (restart cost 30 s)"),
            std::string::npos)
      << text.out;
}

TEST_F(SimCliTest, PerJobTimesAreExact) {
  // 6 digits would print 2240194 as 2.24019e+06.
  std::string trace =
      Write("long.csv", "job_id,submit_s,num_gpus,duration_s\nx,0.25,1,2240194.5\n");
  EXPECT_EQ(PerJob(trace, "1x1"),
            "job_id,tenant,gpus,priority,submit_s,duration_s,start_s,end_s,jct_s,queue_s,"
            "preemptions\n"
            "x,default,1,0,0,2240194.5,0,2240194.5,2240194.5,0,0\n");
}

TEST_F(SimCliTest, ABadTraceRowExitsWith1NamingTheLine) {
  std::string trace =
      Write("bad.csv", "job_id,submit_s,num_gpus,duration_s\n1,0,1,10\n2,5,1,ten\n");
  CliRun run = RunCli({"--trace", trace, "--cluster", "1x4"});
  EXPECT_EQ(run.status, kSimExitFailure);
  EXPECT_EQ(run.err, "dlab-sim: " + trace + ":3: duration_s: expected a number, got 'ten'\n");
  CliRun missing = RunCli({"--trace", (dir_.path() / "none.csv").string(), "--cluster", "1x4"});
  EXPECT_EQ(missing.status, kSimExitFailure);
  EXPECT_NE(missing.err.find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace dlab::sim
