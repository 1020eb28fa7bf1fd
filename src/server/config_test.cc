#include "server/config.h"

#include <gtest/gtest.h>

namespace dlab {
namespace {

TEST(ServerConfigTest, ParsesEveryField) {
  auto c = ParseServerConfig(R"(
listen: 0.0.0.0:9000
data_dir: /var/lib/dlab
node:
  cpus: 16
  memory: 64Gi
  gpus: [{type: H100, count: 4}, {type: A100, model: NVIDIA A100-SXM4-40GB}]
kill_grace: 30s
max_snapshot_size: 1Gi
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->host, "0.0.0.0");
  EXPECT_EQ(c->port, 9000);
  EXPECT_EQ(c->data_dir, "/var/lib/dlab");
  EXPECT_EQ(c->cpu_millis, 16000);
  EXPECT_EQ(c->memory_bytes, 64LL << 30);
  EXPECT_EQ(c->gpus_mode, "declared");
  ASSERT_EQ(c->gpus.size(), 2u);
  EXPECT_EQ(c->gpus[0].count, 4);
  EXPECT_EQ(c->gpus[1].model, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(c->kill_grace, absl::Seconds(30));
  EXPECT_EQ(c->max_snapshot_bytes, 1LL << 30);
}

TEST(ServerConfigTest, EmptyFileKeepsDefaults) {
  auto c = ParseServerConfig("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->port, 8080);
  EXPECT_EQ(c->gpus_mode, "auto");
}

TEST(ServerConfigTest, ErrorsNameTheField) {
  EXPECT_EQ(ParseServerConfig("node: {memory: lots}").status().message(),
            "node.memory: 'lots' is not a memory quantity (examples: 4Gi, 512Mi, 1G)");
  EXPECT_EQ(ParseServerConfig("nodes: {}").status().message(), "nodes: unknown field");
  EXPECT_EQ(ParseServerConfig("node: {gpus: [{count: 2}]}").status().message(),
            "node.gpus[0].type: is required (e.g. H100)");
  EXPECT_EQ(ParseServerConfig("listen: nowhere").status().message(),
            "listen: expected HOST:PORT, got 'nowhere'");
  EXPECT_EQ(ParseServerConfig("scheduler: {policy: lottery}").status().message(),
            "scheduler: unknown scheduling policy 'lottery' (one of: backfill, fair-share, fifo, "
            "las, oracle-srtf, priority)");
  EXPECT_EQ(ParseServerConfig("scheduler: {policy: fifo, params: {las.thresholds: 5}}")
                .status()
                .message(),
            "scheduler: unknown parameter 'las.thresholds' (this policy takes: score)");
}

TEST(ServerConfigTest, Backends) {
  auto local = ParseServerConfig("backend: local");
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->backend, "local");
  auto slurm = ParseServerConfig(
      "backend: {type: slurm, partition: gpu, account: ml, qos: high, bin_dir: /opt/slurm/bin, "
      "poll_interval: 500ms}");
  ASSERT_TRUE(slurm.ok()) << slurm.status();
  EXPECT_EQ(slurm->backend, "slurm");
  EXPECT_EQ(slurm->slurm.partition, "gpu");
  EXPECT_EQ(slurm->slurm.account, "ml");
  EXPECT_EQ(slurm->slurm.qos, "high");
  EXPECT_EQ(slurm->slurm.bin_dir, "/opt/slurm/bin");
  EXPECT_EQ(slurm->slurm_poll_interval, absl::Milliseconds(500));
  EXPECT_EQ(ParseServerConfig("backend: kubernetes").status().message(),
            "backend: 'kubernetes' is not one of local, slurm");
  EXPECT_EQ(ParseServerConfig("backend: {partition: gpu}").status().message(),
            "backend.type: is required (local or slurm)");
  EXPECT_EQ(ParseServerConfig("backend: {type: slurm, queue: gpu}").status().message(),
            "backend.queue: unknown field");
  EXPECT_EQ(ParseServerConfig("backend: {type: local, partition: gpu}").status().message(),
            "backend: partition, account, qos, bin_dir and poll_interval are for slurm");
}

TEST(ServerConfigTest, SchedulerPolicyAndParameters) {
  auto c = ParseServerConfig(
      "scheduler: {policy: priority, params: {preemption.min_runtime: 2s, score: spread}}");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->scheduler.policy, "priority");
  EXPECT_EQ(c->scheduler.params.at("preemption.min_runtime"), "2s");
  EXPECT_EQ(ParseServerConfig("").value().scheduler.policy, "fifo");
  auto w = ParseServerConfig("scheduler: {policy: fair-share, weights: {team-a: 2, team-b: 0.5}}");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->scheduler.tenant_weights.at("team-a"), 2);
  EXPECT_EQ(ParseServerConfig("scheduler: {weights: {team-a: 0}}").status().message(),
            "scheduler.weights.team-a: must be a positive number");
}

}  // namespace
}  // namespace dlab
