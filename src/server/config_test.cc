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
            "gittins, las, oracle-srtf, priority)");
  EXPECT_EQ(ParseServerConfig("scheduler: {policy: fifo, params: {las.thresholds: 5}}")
                .status()
                .message(),
            "scheduler: unknown parameter 'las.thresholds' (this policy takes: score)");
  // The simulator's reference policy needs true run times, which dlabd never has.
  EXPECT_EQ(ParseServerConfig("scheduler: {policy: oracle-srtf}").status().message(),
            "scheduler.policy: oracle-srtf orders jobs by their true remaining run time, which "
            "only the simulator knows (dlab-sim); for unknown run times use gittins or las");
  // Ranges read as written, and a NaN as nan (not JSON's 'null').
  EXPECT_EQ(ParseServerConfig("scheduler: {policy: priority, params: {preemption.max_per_cycle: "
                              "1.5}}")
                .status()
                .message(),
            "scheduler: preemption.max_per_cycle: '1.5' must be a whole number from 0 to 1000000");
  EXPECT_EQ(ParseServerConfig("scheduler: {policy: priority, params: {preemption.min_runtime: "
                              "nan}}")
                .status()
                .message(),
            "scheduler: preemption.min_runtime: 'nan' must be a number of at least 0 (seconds, or "
            "a duration such as 5m)");
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
  EXPECT_EQ(slurm->slurm_queue_ahead, 1);  // the default
  EXPECT_EQ(
      ParseServerConfig("backend: {type: slurm, api_url: 'http://10.0.0.5:8080'}")->slurm_api_url,
      "http://10.0.0.5:8080");
  EXPECT_EQ(ParseServerConfig("backend: {type: slurm, api_url: 10.0.0.5}").status().message(),
            "backend.api_url: must be an http:// or https:// URL the compute nodes can reach dlabd "
            "at");
  EXPECT_EQ(ParseServerConfig("backend: {type: slurm, slurmrestd: 'unix:/run/slurmrestd.sock'}")
                ->slurm.rest_url,
            "unix:/run/slurmrestd.sock");
  auto jwt = ParseServerConfig(
      "backend: {type: slurm, slurmrestd: 'http://ctl:6820', slurmrestd_token_file: /etc/dlab/jwt, "
      "slurmrestd_user: dlab}");
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ(jwt->slurm.rest_token_file, "/etc/dlab/jwt");
  EXPECT_EQ(jwt->slurm.rest_user, "dlab");
  EXPECT_EQ(ParseServerConfig("backend: {type: slurm, slurmrestd: /run/slurmrestd.sock}")
                .status()
                .message(),
            "backend.slurmrestd: must be unix:/PATH (slurmrestd's socket) or an http:// or "
            "https:// URL");
  EXPECT_EQ(
      ParseServerConfig("backend: {type: slurm, slurmrestd_token_file: /jwt}").status().message(),
      "backend.slurmrestd: is required with slurmrestd_token_file and slurmrestd_user");
  EXPECT_EQ(ParseServerConfig("backend: {type: slurm, queue_ahead: 0}")->slurm_queue_ahead, 0);
  EXPECT_EQ(ParseServerConfig("backend: {type: slurm, queue_ahead: -1}").status().message(),
            "backend.queue_ahead: must be an integer from 0 to 8 (nodes' worth)");
  auto kube = ParseServerConfig(
      "backend: {type: kubernetes, kubeconfig: /etc/dlab/kubeconfig, namespace: ml, image: "
      "ghcr.io/team/train:1, data_claim: dlab-data, api_url: 'http://dlabd.ml:8080', "
      "image_pull_secrets: [regcred], master_port: 23456, ttl_after_finished: 2h}");
  ASSERT_TRUE(kube.ok()) << kube.status();
  EXPECT_EQ(kube->backend, "kubernetes");
  EXPECT_EQ(kube->kube.kubeconfig, "/etc/dlab/kubeconfig");
  EXPECT_EQ(kube->kube.namespace_, "ml");
  EXPECT_EQ(kube->kube.image, "ghcr.io/team/train:1");
  EXPECT_EQ(kube->kube.data_claim, "dlab-data");
  EXPECT_EQ(kube->kube.api_url, "http://dlabd.ml:8080");
  EXPECT_EQ(kube->kube.image_pull_secrets, std::vector<std::string>{"regcred"});
  EXPECT_EQ(kube->kube.master_port, 23456);
  EXPECT_EQ(kube->kube.ttl_after_finished_s, 7200);
  EXPECT_EQ(kube->kube.code_mount, "/dlab/code");  // defaults stay
  EXPECT_EQ(ParseServerConfig("backend: kubernetes").value().backend, "kubernetes");
  EXPECT_EQ(ParseServerConfig("backend: nomad").status().message(),
            "backend: 'nomad' is not one of local, slurm, kubernetes");
  EXPECT_EQ(ParseServerConfig("backend: {partition: gpu}").status().message(),
            "backend.type: is required (local, slurm or kubernetes)");
  EXPECT_EQ(ParseServerConfig("backend: {type: slurm, queue: gpu}").status().message(),
            "backend.queue: unknown field");
  EXPECT_EQ(ParseServerConfig("backend: {type: kubernetes, partition: gpu}").status().message(),
            "backend.partition: unknown field");
  EXPECT_EQ(ParseServerConfig("backend: {type: local, partition: gpu}").status().message(),
            "backend: the local backend has no settings besides type");
  EXPECT_EQ(
      ParseServerConfig("backend: {type: kubernetes, api_url: dlabd:8080}").status().message(),
      "backend.api_url: must be an http:// or https:// URL pods can reach dlabd at");
  EXPECT_EQ(ParseServerConfig("backend: {type: kubernetes, master_port: 0}").status().message(),
            "backend.master_port: must be a port number (1-65535)");
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

TEST(ServerConfigTest, SecretsAreTakenOutOfTheEnvironment) {
  setenv("DLAB_BOOTSTRAP_PASSWORD", "from-the-environment", 1);
  setenv("DLAB_BOOTSTRAP_USER", "", 1);  // empty: the file's value stays
  setenv("DLAB_SECRET_ACCESS_KEY", "a-cli-users-secret", 1);
  ServerConfig c =
      ParseServerConfig("bootstrap: {user: root-admin, password: from-the-file}").value();
  TakeEnvironmentSecrets(&c);
  EXPECT_EQ(c.bootstrap.password, "from-the-environment");
  EXPECT_EQ(c.bootstrap.user, "root-admin");
  // Jobs inherit dlabd's environment: the secrets are no longer in it.
  EXPECT_EQ(std::getenv("DLAB_BOOTSTRAP_PASSWORD"), nullptr);
  EXPECT_EQ(std::getenv("DLAB_BOOTSTRAP_USER"), nullptr);
  EXPECT_EQ(std::getenv("DLAB_SECRET_ACCESS_KEY"), nullptr);
  EXPECT_EQ(c.bootstrap.secret_access_key, "");  // not a bootstrap value
}

}  // namespace
}  // namespace dlab
