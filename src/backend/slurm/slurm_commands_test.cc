#include "backend/slurm/slurm_commands.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseSlurmNodes, ReadsCpusMemoryGpusAndPartitions) {
  auto nodes = ParseSlurmNodes(
      "NodeName=gpu01 Arch=x86_64 CoresPerSocket=1 CPUAlloc=2 CPUTot=16 CPULoad=0.10 "
      "AvailableFeatures=(null) ActiveFeatures=(null) Gres=gpu:a100:4(S:0) NodeAddr=gpu01 "
      "RealMemory=32768 AllocMem=1024 State=MIXED Partitions=debug,long Reason=none\n"
      "NodeName=cpu01 CPUTot=8 RealMemory=8000 Gres=(null) State=IDLE Partitions=debug\n"
      "NodeName=mixed CPUTot=8 RealMemory=8000 Gres=gpu:v100:2,gpu:t4:1 "
      "State=DOWN+NOT_RESPONDING\n");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 3u);
  const SlurmNode& gpu = (*nodes)[0];
  EXPECT_EQ(gpu.name, "gpu01");
  EXPECT_EQ(gpu.cpus, 16);
  EXPECT_EQ(gpu.memory_mb, 32768);
  EXPECT_EQ(gpu.gpus, 4);
  EXPECT_EQ(gpu.gpu_type, "a100");
  EXPECT_EQ(gpu.state, "MIXED");
  EXPECT_EQ(gpu.cpus_alloc, 2);
  EXPECT_EQ(gpu.alloc_mem_mb, 1024);
  EXPECT_THAT(gpu.partitions, ElementsAre("debug", "long"));
  EXPECT_EQ((*nodes)[1].gpus, 0);
  EXPECT_EQ((*nodes)[2].gpus, 3);
  EXPECT_EQ((*nodes)[2].gpu_type, "") << "several types: none in particular";
}

TEST(ParseSlurmNodes, ANodeWithoutCpusIsAnError) {
  auto nodes = ParseSlurmNodes("NodeName=x State=IDLE\n");
  EXPECT_THAT(std::string(nodes.status().message()), HasSubstr("CPUTot"));
}

LaunchRequest TwoTasks() {
  LaunchRequest r{.job_id = 7, .attempt = 2, .attempt_dir = "/data/jobs/7/attempt-2"};
  r.tasks.push_back({.rank = 0,
                     .argv = {"python3"},
                     .allocation = {.cpu_millis = 1500, .memory_bytes = 1LL << 30, .gpus = {0}}});
  r.tasks.push_back({.rank = 1,
                     .argv = {"python3"},
                     .allocation = {.cpu_millis = 500, .memory_bytes = 512LL << 20, .gpus = {3}}});
  return r;
}

TEST(SbatchCommand, AsksForOneSlurmTaskPerTaskOfAGangEachWithTheLargestShare) {
  LaunchRequest r = TwoTasks();
  r.max_runtime = absl::Minutes(10);
  r.kill_grace = absl::Seconds(30);
  r.gpu_type = "a100";
  auto argv = SbatchCommand(r, {.partition = "gpu", .account = "ml", .qos = "high"},
                            SlurmJobName("0123abcd", 7, 2), "/data/jobs/7/attempt-2/slurm.sbatch");
  // 1.5 CPUs -> 2 per task; 1 GiB over 2 CPUs -> 512 MiB per CPU; no --nodes: Slurm spreads
  // the tasks over as many nodes as it needs.
  EXPECT_THAT(argv, ElementsAre("sbatch", "--parsable", "--job-name=dlab-0123abcd-7-2",
                                "--output=/data/jobs/7/attempt-2/shim.log",
                                "--chdir=/data/jobs/7/attempt-2", "--no-requeue", "--ntasks=2",
                                "--cpus-per-task=2", "--mem-per-cpu=512", "--gpus-per-task=a100:1",
                                "--time=12", "--partition=gpu", "--account=ml", "--qos=high",
                                "/data/jobs/7/attempt-2/slurm.sbatch"));
}

TEST(SbatchCommand, RunsOneTaskOnOneNodeWithItsOwnShare) {
  LaunchRequest r = TwoTasks();
  r.tasks.pop_back();
  r.gpu_type = "a100";
  auto argv = SbatchCommand(r, {}, "dlab-x-7-2", "/s");
  EXPECT_THAT(
      argv, ElementsAre("sbatch", "--parsable", "--job-name=dlab-x-7-2",
                        "--output=/data/jobs/7/attempt-2/shim.log",
                        "--chdir=/data/jobs/7/attempt-2", "--no-requeue", "--nodes=1", "--ntasks=1",
                        "--cpus-per-task=2", "--mem=1024", "--gres=gpu:a100:1", "/s"));
}

TEST(SbatchCommand, LeavesOutWhatIsNotAskedFor) {
  LaunchRequest r{.job_id = 1, .attempt = 1, .attempt_dir = "/d"};
  r.tasks.push_back({.rank = 0, .argv = {"true"}});
  auto argv = SbatchCommand(r, {.bin_dir = "/opt/slurm/bin/"}, "dlab-x-1-1", "/d/slurm.sbatch");
  EXPECT_EQ(argv[0], "/opt/slurm/bin/sbatch");
  EXPECT_THAT(argv, Contains("--cpus-per-task=1"));
  for (const char* absent :
       {"--mem", "--gres=", "--gpus", "--time=", "--partition=", "--account="}) {
    for (const std::string& a : argv) EXPECT_THAT(a, Not(HasSubstr(absent)));
  }
  LaunchRequest untyped = TwoTasks();
  EXPECT_THAT(SbatchCommand(untyped, {}, "dlab-x-7-2", "/s"), Contains("--gpus-per-task=1"));
}

// slurmrestd gets the same request as sbatch, as v0.0.38's job properties.
TEST(SlurmRestSubmitBody, AsksForWhatSbatchAsksFor) {
  LaunchRequest gang = TwoTasks();
  gang.max_runtime = absl::Minutes(10);
  gang.kill_grace = absl::Seconds(30);
  gang.gpu_type = "a100";
  auto body = nlohmann::json::parse(SlurmRestSubmitBody(
      gang, {.partition = "gpu", .account = "ml", .qos = "high"}, "dlab-x-7-2", "#!/bin/sh\n",
      {{"PATH", "/usr/bin"}}));
  EXPECT_EQ(body["script"], "#!/bin/sh\n");
  EXPECT_EQ(body["job"], nlohmann::json::parse(R"({
      "name": "dlab-x-7-2", "current_working_directory": "/data/jobs/7/attempt-2",
      "standard_output": "/data/jobs/7/attempt-2/shim.log", "requeue": false,
      "tasks": 2, "cpus_per_task": 2, "memory_per_cpu": 512, "gpus_per_task": "a100:1",
      "time_limit": 12, "partition": "gpu", "account": "ml", "qos": "high",
      "environment": {"PATH": "/usr/bin"}})"));

  LaunchRequest one = TwoTasks();
  one.tasks.pop_back();
  auto job = nlohmann::json::parse(SlurmRestSubmitBody(one, {}, "n", "s", {}))["job"];
  EXPECT_EQ(job["nodes"], nlohmann::json::parse("[1, 1]"));
  EXPECT_EQ(job["tasks"], 1);
  EXPECT_EQ(job["memory_per_node"], 1024);
  EXPECT_EQ(job["gres"], "gpu:1");
  for (const char* absent : {"time_limit", "partition", "account", "qos", "memory_per_cpu"}) {
    EXPECT_FALSE(job.contains(absent)) << absent;
  }
  // An environment that is not UTF-8 is still a valid body.
  EXPECT_NO_THROW(nlohmann::json::parse(SlurmRestSubmitBody(one, {}, "n", "s", {{"X", "\xff"}})));
}

TEST(ParseSlurmRestSubmit, TakesTheJobIdOrSaysWhatSlurmRefused) {
  EXPECT_EQ(*ParseSlurmRestSubmit(200, R"({"job_id": 41, "step_id": "batch", "errors": []})"),
            41);
  auto refused = ParseSlurmRestSubmit(
      500, R"({"errors": [{"error": "Requested node configuration is not available",
                            "errno": 2014}], "job_id": 0})");
  EXPECT_EQ(refused.status().message(),
            "slurmrestd refused the submission (HTTP 500): Requested node configuration is not "
            "available");
  EXPECT_FALSE(ParseSlurmRestSubmit(200, R"({"errors": []})").ok());
  EXPECT_EQ(ParseSlurmRestSubmit(502, "Bad Gateway").status().message(),
            "slurmrestd refused the submission (HTTP 502): Bad Gateway");
}

TEST(SlurmBatchScript, ExecsTheShimWithQuotedPaths) {
  std::string script = SlurmBatchScript("/opt/dlab/bin/dlab-shim", "/data/it's/attempt-1");
  EXPECT_THAT(script, HasSubstr("#!/bin/sh\n"));
  EXPECT_THAT(script, HasSubstr("export DLAB_NO_CGROUPS=1\n"));
  EXPECT_THAT(script, HasSubstr("export DLAB_GRANTED_GPUS=\"${CUDA_VISIBLE_DEVICES-}\"\n"));
  EXPECT_THAT(
      script,
      HasSubstr("exec '/opt/dlab/bin/dlab-shim' --attempt-dir '/data/it'\\''s/attempt-1'\n"));
}

TEST(ParseSbatchJobId, TakesTheIdWithOrWithoutCluster) {
  EXPECT_EQ(*ParseSbatchJobId("123\n"), 123);
  EXPECT_EQ(*ParseSbatchJobId("456;cluster1\n"), 456);
  EXPECT_FALSE(ParseSbatchJobId("sbatch: error: Batch job submission failed").ok());
  EXPECT_FALSE(ParseSbatchJobId("").ok());
}

TEST(InterpretSlurmState, SaysWhatAnEndWithoutARecordMeans) {
  EXPECT_TRUE(InterpretSlurmState("PENDING").active);
  EXPECT_TRUE(InterpretSlurmState("PENDING").pending);
  EXPECT_TRUE(InterpretSlurmState("RUNNING").active);
  EXPECT_FALSE(InterpretSlurmState("RUNNING").pending);
  EXPECT_TRUE(InterpretSlurmState("COMPLETING").active);
  EXPECT_FALSE(InterpretSlurmState("COMPLETED").active);
  EXPECT_THAT(InterpretSlurmState("NODE_FAIL").lost, HasSubstr("node"));
  EXPECT_THAT(InterpretSlurmState("TIMEOUT").lost, HasSubstr("time limit"));
  EXPECT_THAT(InterpretSlurmState("OUT_OF_MEMORY").lost, HasSubstr("memory"));
  EXPECT_THAT(InterpretSlurmState("PREEMPTED").lost, HasSubstr("preempted"));
  EXPECT_THAT(InterpretSlurmState("").lost, HasSubstr("no longer knows"));
  EXPECT_THAT(InterpretSlurmState("FAILED").lost, HasSubstr("FAILED"));
  EXPECT_TRUE(InterpretSlurmState("CANCELLED").stopped_by_slurm);
  EXPECT_TRUE(InterpretSlurmState("NODE_FAIL").stopped_by_slurm);
  EXPECT_FALSE(InterpretSlurmState("COMPLETED").stopped_by_slurm);
  EXPECT_FALSE(InterpretSlurmState("FAILED").stopped_by_slurm);
}

TEST(ParseSqueueStates, ReadsIdAndStatePerLine) {
  EXPECT_THAT(ParseSqueueStates("12 RUNNING\n13 PENDING\n\nbad line\n"),
              ElementsAre(std::pair<int64_t, std::string>{12, "RUNNING"},
                          std::pair<int64_t, std::string>{13, "PENDING"}));
}

}  // namespace
}  // namespace dlab
