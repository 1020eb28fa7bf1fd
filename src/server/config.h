// dlabd's configuration: embedded defaults, overridden by a YAML config file, overridden by
// command-line flags. Parsing only; thread-compatible value types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/kubernetes/kube_options.h"
#include "backend/slurm/slurm_commands.h"
#include "monitor/alerts.h"
#include "sched/framework.h"

namespace dlab {

struct GpuDeclaration {
  std::string type;   // "H100"
  std::string model;  // defaults to type
  int count = 1;
};

// The first superadmin, created on first start (when there are no users). Unset values:
// user "admin", a random password, a random access key; whatever was made up is printed once
// and written to <data_dir>/initial-credentials (mode 0600).
struct BootstrapConfig {
  std::string user = "admin";
  std::string password;
  std::string access_key_id;
  std::string secret_access_key;
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string data_dir;                           // required (flag or file)
  int64_t cpu_millis = 0;                         // 0: detect
  int64_t memory_bytes = 0;                       // 0: detect
  std::string gpus_mode = "auto";                 // "auto" (NVML), "none", or "declared"
  std::vector<GpuDeclaration> gpus;               // when declared
  absl::Duration kill_grace = absl::Seconds(30);  // SIGTERM -> SIGKILL: time to checkpoint
  int first_port = 25000;  // MASTER_PORT / TF_CONFIG ports for attempts ("ports: 25000-29999")
  int last_port = 29999;
  int64_t max_snapshot_bytes = 512LL << 20;
  int http_threads = 8;   // handlers block on fsync and file reads: more threads than cores
  std::string shim_path;  // default: dlab-shim beside dlabd
  BootstrapConfig bootstrap;
  // "signed" (default): every /api/v1 request is signed or has a login session. "none":
  // requests without credentials act as the bootstrap superadmin. Insecure: allowed only
  // when listening on a loopback address; meant for benchmarks (the unsigned baseline).
  std::string auth = "signed";
  absl::Duration session_lifetime = absl::Hours(12);  // password logins (web console)
  // scheduler: {policy: fifo, params: {preemption.min_runtime: 5m}}; see docs/scheduling.md.
  SchedulerConfig scheduler;
  // Where attempts run: "local" (this machine), "slurm" (batch jobs on a Slurm cluster;
  // backend: {type: slurm, partition, account, qos, bin_dir, poll_interval, queue_ahead,
  // api_url, slurmrestd, slurmrestd_token_file, slurmrestd_user}; see docs/deploy-slurm.md) or
  // "kubernetes" (an Indexed Job per attempt; backend:
  // {type: kubernetes, namespace, image, data_claim, ...}; see docs/deploy-kubernetes.md).
  std::string backend = "local";
  SlurmOptions slurm;
  absl::Duration slurm_poll_interval = absl::Seconds(1);
  // How many nodes' worth of attempts beyond what fits dlab hands Slurm to hold in its queue,
  // so that Slurm starts the next as soon as one ends (its start cost overlaps the runs).
  int slurm_queue_ahead = 1;
  // The URL jobs on the compute nodes reach dlabd at (DLAB_API_URL, for the SDK); "": dlabd's
  // own listen address, which only jobs on dlabd's machine reach when it is 127.0.0.1.
  std::string slurm_api_url;
  KubeOptions kube;
  // monitoring: {interval: 5s, window: 1h, telemetry_file: PATH}: telemetry sampling (see
  // docs/monitoring.md); telemetry_file replaces the GPU readings (tests, demos).
  absl::Duration monitoring_interval = absl::Seconds(5);
  absl::Duration monitoring_window = absl::Hours(1);
  std::string telemetry_file;
  // console: {dir: PATH}: the built web console that dlabd serves at / (default: the
  // share/dlab/console directory beside dlabd's bin/, where the build puts it).
  std::string console_dir;
  // alerts: {rules: [...]}, parsed by ParseAlertRules.
  std::vector<AlertRule> alert_rules;
};

// InvalidArgument naming the field ("node.memory: ...") or the YAML syntax error.
absl::StatusOr<ServerConfig> ParseServerConfig(const std::string& yaml_text,
                                               ServerConfig base = {});
// Bootstrap values from the environment (DLAB_BOOTSTRAP_USER, DLAB_BOOTSTRAP_PASSWORD,
// DLAB_BOOTSTRAP_ACCESS_KEY_ID, DLAB_BOOTSTRAP_SECRET_ACCESS_KEY) over those of the file. Removes
// them, and the dlab CLI's access key (DLAB_ACCESS_KEY_ID, DLAB_SECRET_ACCESS_KEY), from the
// process environment, so that no job or command dlabd starts inherits them; call it before any
// thread starts.
void TakeEnvironmentSecrets(ServerConfig* config);

// "HOST:PORT" into config. InvalidArgument when malformed.
absl::Status ParseListen(const std::string& listen, ServerConfig* config);

}  // namespace dlab
