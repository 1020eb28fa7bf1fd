#include "server/server.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api/auth_gate.h"
#include "api/console_routes.h"
#include "api/http_server.h"
#include "api/identity_routes.h"
#include "api/json_util.h"
#include "api/metrics.h"
#include "api/metrics_routes.h"
#include "api/monitor_routes.h"
#include "api/routes.h"
#include "auth/secrets.h"
#include "backend/kubernetes/kube_backend.h"
#include "backend/local/local_backend.h"
#include "backend/local/node_resources.h"
#include "backend/slurm/slurm_backend.h"
#include "common/file_util.h"
#include "common/job_token.h"
#include "common/quantity.h"
#include "monitor/monitor_service.h"
#include "nlohmann/json.hpp"
#include "sched/job_controller.h"
#include "spdlog/spdlog.h"
#include "store/counting_store.h"
#include "store/identity_store.h"
#include "store/metrics_store.h"
#include "store/snapshot_store.h"
#include "store/store.h"
#include "tboard/tensorboard_ingester.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

absl::Status PrepareDataDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", dir, " is not usable: ", ec.message()));
  std::string probe = absl::StrCat(dir, "/.write-test");
  if (auto s = WriteFileAtomically(probe, "ok"); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", dir, " is not writable: ", s.message()));
  }
  fs::remove(probe, ec);
  return absl::OkStatus();
}

NodeCapacity DiscoverNode(const ServerConfig& config) {
  NodeCapacity node{
      .cpu_millis = config.cpu_millis ? config.cpu_millis : DetectCpuMillis(),
      .memory_bytes = config.memory_bytes ? config.memory_bytes : DetectMemoryBytes()};
  if (config.gpus_mode == "declared") {
    for (const GpuDeclaration& d : config.gpus) {
      for (int i = 0; i < d.count; ++i) {
        node.gpus.push_back({static_cast<int>(node.gpus.size()), d.type, d.model});
      }
    }
  } else if (config.gpus_mode == "auto") {
    auto gpus = DiscoverNvmlGpus();
    if (gpus.ok()) {
      for (const GpuDevice& g : *gpus) node.gpus.push_back({g.index, g.type, g.model});
    } else {
      spdlog::info("no GPUs: {}", std::string(gpus.status().message()));
    }
  }
  std::string gpus;
  for (const GpuSlot& g : node.gpus)
    absl::StrAppend(&gpus, gpus.empty() ? "" : ", ", g.index, ":", g.model);
  spdlog::info("node: {} CPUs, {} memory, GPUs [{}]", FormatCpuMillis(node.cpu_millis),
               FormatMemoryBytes(node.memory_bytes), gpus);
  return node;
}

BackendNode ToBackendNode(const NodeCapacity& n, std::string name) {
  BackendNode node{
      .name = std::move(name), .cpu_millis = n.cpu_millis, .memory_bytes = n.memory_bytes};
  for (const GpuSlot& g : n.gpus) node.gpus.push_back({g.index, g.type, g.model});
  return node;
}

// The nodes dlab's scheduler places attempts on: the backend's (dlab admits and orders the
// jobs; on Slurm and Kubernetes their manager places the tasks). Unavailable when the backend
// lists no node.
absl::StatusOr<std::vector<NodeCapacity>> SchedulingNodes(Backend& backend) {
  auto listed = backend.Inventory();
  if (!listed.ok()) return listed.status();
  if (listed->empty()) return absl::UnavailableError("the backend has no node to run attempts on");
  std::vector<NodeCapacity> nodes;
  NodeCapacity total;
  size_t gpus = 0;
  for (const BackendNode& b : *listed) {
    NodeCapacity node{.cpu_millis = b.cpu_millis, .memory_bytes = b.memory_bytes};
    for (const BackendNode::Gpu& g : b.gpus) node.gpus.push_back({g.index, g.type, g.model});
    if (listed->size() <= 8) {
      spdlog::info("scheduling onto node {}: {} CPUs, {} memory, {} GPUs", b.name,
                   FormatCpuMillis(node.cpu_millis), FormatMemoryBytes(node.memory_bytes),
                   node.gpus.size());
    }
    total.cpu_millis += node.cpu_millis;
    total.memory_bytes += node.memory_bytes;
    gpus += node.gpus.size();
    nodes.push_back(std::move(node));
  }
  if (listed->size() > 8) {
    spdlog::info("scheduling onto {} nodes: {} CPUs, {} memory, {} GPUs in all", listed->size(),
                 FormatCpuMillis(total.cpu_millis), FormatMemoryBytes(total.memory_bytes), gpus);
  }
  return nodes;
}

// The directory of the running dlabd (its bin/).
fs::path SelfDir() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).parent_path();
}

std::string ConsoleDir(const ServerConfig& config) {
  if (!config.console_dir.empty()) return config.console_dir;
  return (SelfDir().parent_path() / "share" / "dlab" / "console").string();
}

std::string ShimPath(const ServerConfig& config) {
  if (!config.shim_path.empty()) return config.shim_path;
  return (SelfDir() / "dlab-shim").string();
}

// The Python SDK: installed beside dlabd (PREFIX/share/dlab/python), or in the source tree that
// dlabd was built in (build/bin/dlabd -> python/).
std::string PythonSdkDir() {
  std::error_code ec;
  fs::path bin = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (const fs::path& dir : {bin / "../share/dlab/python", bin / "../../python"}) {
    if (fs::exists(dir / "dlab" / "__init__.py", ec)) return fs::weakly_canonical(dir, ec).string();
  }
  spdlog::warn(
      "the Python SDK was not found beside dlabd: jobs cannot `import dlab` unless "
      "they install it");
  return "";
}

// On first start (no users yet): the superadmin, admin of the tenant "default", with an access
// key. What the config did not give is made up, printed once on stderr, and written to
// <data_dir>/initial-credentials (0600) in the CLI's config-file format.
absl::Status Bootstrap(const ServerConfig& config, const std::string& data_dir,
                       IdentityStore* identity, AuthGate* gate) {
  auto users = identity->CountUsers();
  if (!users.ok()) return users.status();
  if (*users > 0) return absl::OkStatus();
  const BootstrapConfig& b = config.bootstrap;
  if (auto s = ValidateName("bootstrap.user", b.user); !s.ok()) return s;
  if (b.access_key_id.empty() != b.secret_access_key.empty()) {
    return absl::InvalidArgumentError(
        "bootstrap: access_key_id and secret_access_key go together; give both or neither");
  }
  if (!b.access_key_id.empty() && !auth::IsAccessKeyId(b.access_key_id)) {
    return absl::InvalidArgumentError(absl::StrCat("bootstrap.access_key_id: '", b.access_key_id,
                                                   "' is not a key id (AK and 18 of A-Z 0-9)"));
  }
  if (!b.secret_access_key.empty() && b.secret_access_key.size() < 20) {
    return absl::InvalidArgumentError("bootstrap.secret_access_key: at least 20 characters");
  }
  std::string password = b.password.empty() ? auth::RandomToken(15) : b.password;
  auto user = identity->CreateUser(
      {.name = b.user, .password_hash = auth::HashPassword(password), .superadmin = true});
  if (!user.ok()) return user.status();
  if (auto s = identity->SetMembership(kDefaultTenantId, user->id, Role::kAdmin); !s.ok()) return s;
  auto key = gate->CreateKey(*user, "bootstrap",
                             auth::AccessKey{.id = b.access_key_id, .secret = b.secret_access_key});
  if (!key.ok()) return key.status();
  const std::string& key_id = key->first.id;
  const std::string& secret = key->second;
  std::string path = absl::StrCat(data_dir, "/initial-credentials");
  std::string text = absl::StrCat(
      "# dlab: the first superadmin, created ", FormatRfc3339(absl::Now()),
      ". Log in with `dlab login --user ", b.user,
      "`,\n# then change the password (`dlab passwd`) "
      "and delete this file.\nuser: ",
      b.user, "\npassword: ", nlohmann::json(password).dump(), "\naccess_key_id: ", key_id,
      "\nsecret_access_key: ", nlohmann::json(secret).dump(), "\n");
  if (auto s = WriteFileAtomically(path, text, {.mode = 0600}); !s.ok()) return s;
  std::fprintf(stderr,
               "\n==== dlab: created the superadmin '%s' (tenant 'default', role admin) ====\n"
               "  password:          %s\n  access key id:     %s\n  secret access key: %s\n"
               "  (shown once; also in %s, mode 0600)\n"
               "  log in: dlab login --user %s\n\n",
               b.user.c_str(), b.password.empty() ? password.c_str() : "(from the config)",
               key_id.c_str(), b.secret_access_key.empty() ? secret.c_str() : "(from the config)",
               path.c_str(), b.user.c_str());
  return absl::OkStatus();
}

}  // namespace

absl::Status RunServer(const ServerConfig& config) {
  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (config.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  std::string data_dir = fs::absolute(config.data_dir).lexically_normal().string();
  if (auto s = PrepareDataDir(data_dir); !s.ok()) return s;
  // Resolved, so that no symbolic link is on the paths that snapshots are unpacked into.
  data_dir = fs::canonical(data_dir).string();

  auto sqlite_store = Store::OpenSqlite(absl::StrCat(data_dir, "/dlab.db"));
  if (!sqlite_store.ok()) return sqlite_store.status();
  // Every reader and writer goes through the counter: live views watch it for changes.
  CountingStore counting_store(sqlite_store->get());
  CountingStore* store = &counting_store;
  auto training = MetricsStore::OpenSqlite(absl::StrCat(data_dir, "/metrics.db"));
  if (!training.ok()) return training.status();
  auto tokens = JobTokens::LoadOrCreate(absl::StrCat(data_dir, "/secret"));
  if (!tokens.ok()) return tokens.status();
  auto identity = IdentityStore::OpenSqlite(absl::StrCat(data_dir, "/dlab.db"));
  if (!identity.ok()) return identity.status();
  auth::SecretBox secret_box(tokens->secret());
  AuthGate gate(identity->get(), &secret_box, config.session_lifetime);
  if (auto s = Bootstrap(config, data_dir, identity->get(), &gate); !s.ok()) return s;
  if (config.auth == "none") {
    if (config.host != "127.0.0.1" && config.host != "::1" && config.host != "localhost") {
      return absl::InvalidArgumentError(absl::StrCat(
          "auth: none is allowed only when listening on a loopback address, not ", config.host));
    }
    auto admin = (*identity)->GetUser(config.bootstrap.user);
    if (!admin.ok()) return admin.status();
    gate.AllowAnonymousAs(admin->id);
    spdlog::warn("auth: none: requests without credentials act as '{}' (insecure)", admin->name);
  }
  SnapshotStore snapshots(absl::StrCat(data_dir, "/snapshots"));
  absl::StatusOr<std::unique_ptr<Backend>> backend;
  if (config.backend == "slurm") {
    backend = NewSlurmBackend({.shim_path = ShimPath(config),
                               .data_dir = data_dir,
                               .slurm = config.slurm,
                               .poll_interval = config.slurm_poll_interval});
  } else if (config.backend == "kubernetes") {
    KubeOptions kube = config.kube;
    kube.data_dir = data_dir;
    backend = NewKubeBackend({.objects = kube});
  } else {
    backend = NewLocalBackend({.shim_path = ShimPath(config),
                               .data_dir = data_dir,
                               .node = ToBackendNode(DiscoverNode(config), "localhost")});
  }
  if (!backend.ok()) return backend.status();
  absl::StatusOr<std::vector<NodeCapacity>> nodes = SchedulingNodes(**backend);
  if (!nodes.ok()) return nodes.status();
  std::vector<NodeCapacity> queue_ahead;
  if (config.backend == "slurm" && config.slurm_queue_ahead > 0) {
    // Copies of the largest node: that many nodes' worth of attempts wait in Slurm's queue.
    queue_ahead.assign(config.slurm_queue_ahead, LargestNode(*nodes));
    spdlog::info(
        "slurm: up to {} node(s)' worth of attempts may wait in Slurm's queue "
        "(backend.queue_ahead)",
        config.slurm_queue_ahead);
  }

  {
    std::vector<std::string> params;
    for (const auto& [key, value] : config.scheduler.params) {
      params.push_back(absl::StrCat(key, "=", value));
    }
    spdlog::info("scheduler: policy {}{}", config.scheduler.policy,
                 params.empty() ? "" : absl::StrCat(" (", absl::StrJoin(params, ", "), ")"));
    if (!config.scheduler.tenant_weights.empty() && config.scheduler.policy != "fair-share") {
      spdlog::warn("scheduler.weights only order jobs under the fair-share policy, not {}",
                   config.scheduler.policy);
    }
  }
  Metrics metrics;
  MetricsStore* metrics_store = training->get();
  JobController controller(
      {.data_dir = data_dir,
       .nodes = *nodes,
       .queue_ahead_nodes = queue_ahead,
       .scheduler = config.scheduler,
       .kill_grace = config.kill_grace,
       .first_port = config.first_port,
       .last_port = config.last_port,
       .latest_checkpoint = [metrics_store](int64_t job_id) -> std::optional<SavedCheckpoint> {
         auto latest = metrics_store->LatestCheckpoint(job_id);
         if (!latest.ok()) {
           spdlog::warn("job {}: cannot read its checkpoints: {}", job_id,
                        latest.status().ToString());
           return std::nullopt;
         }
         if (!latest->has_value()) return std::nullopt;
         const CheckpointRecord& c = **latest;
         return SavedCheckpoint{.ref = {.id = c.id, .step = c.step, .path = c.path},
                                .time = c.time};
       },
       .python_sdk_dir = PythonSdkDir(),
       .job_token = [&tokens](int64_t job_id) { return tokens->Token(job_id); },
       .tenant_quotas =
           [&identity]() {
             std::map<int64_t, TenantQuota> quotas;
             auto tenants = (*identity)->ListTenants();
             if (!tenants.ok()) {
               spdlog::warn("quotas: {}", tenants.status().ToString());
               return quotas;
             }
             for (const Tenant& t : *tenants) {
               if (t.quota != TenantQuota{}) quotas[t.id] = t.quota;
             }
             return quotas;
           },
       .tenant_weights =
           [&identity, &config]() {
             std::map<int64_t, double> weights;
             for (const auto& [name, weight] : config.scheduler.tenant_weights) {
               if (auto t = (*identity)->GetTenant(name); t.ok()) weights[t->id] = weight;
             }
             return weights;
           }},
      store, &snapshots, backend->get(),
      {.on_started = [&metrics](absl::Duration d) { metrics.ObserveSchedulingLatency(d); }});
  Router router;
  // Monitoring: this node's telemetry and the alert rules (docs/monitoring.md).
  HostTelemetryOptions host{.node = "localhost",
                            .data_dir = data_dir,
                            .use_nvml = config.backend == "local" && config.gpus_mode == "auto"};
  if (config.backend != "local") {
    host.note = "dlabd samples only its own host; the cluster's GPUs are not sampled yet";
  } else if (config.gpus_mode == "declared") {
    for (const GpuSlot& g : nodes->front().gpus)
      host.configured_gpus.push_back({.index = g.index, .model = g.model});
    host.note = "GPUs declared in the config (node.gpus): no readings";
  }
  std::unique_ptr<TelemetrySource> telemetry = NewHostTelemetry(host);
  if (!config.telemetry_file.empty()) {
    telemetry = NewFileTelemetry(config.telemetry_file, std::move(telemetry));
  }
  const absl::Time monitor_start = absl::Now();
  MonitorService monitor(
      {.interval = config.monitoring_interval,
       .window = config.monitoring_window,
       .rules = config.alert_rules,
       .job_metrics = metrics_store},
      std::move(telemetry),
      {.job_gpus =
           [&controller, &store] {
             std::map<int64_t, JobGpus> out;
             for (const auto& r : controller.Running()) {
               if (r.gpus.empty()) continue;
               JobGpus& held = out[r.job_id];
               held.gpus = r.gpus;
               held.attempt = r.attempt;
               // The job's first start: the x axis of its GPU series (docs/monitoring.md).
               if (auto job = store->GetJob(r.job_id); job.ok()) {
                 held.start_time = job->start_time;
               }
             }
             return out;
           },
       .failed_jobs =
           [&store, monitor_start] {
             std::map<std::string, std::string> out;
             auto jobs = store->ListJobs({.states = {JobState::kFailed}, .limit = 200});
             if (!jobs.ok()) return out;
             for (const JobRecord& j : *jobs) {
               if (j.end_time && *j.end_time >= monitor_start) {
                 out[absl::StrCat("job ", j.id)] =
                     absl::StrCat("job ", j.id, " (", j.spec.name, ") failed: ", j.reason);
               }
             }
             return out;
           },
       .lost_nodes =
           [&backend, &config] {
             std::map<std::string, std::string> out;
             if (config.backend == "local") return out;  // this machine: dlabd runs on it
             auto nodes = (*backend)->Inventory();
             if (!nodes.ok()) return out;
             for (const BackendNode& n : *nodes) {
               if (n.state.find("DOWN") != std::string::npos ||
                   n.state.find("NOT_RESPONDING") != std::string::npos ||
                   n.state.find("FAIL") != std::string::npos) {
                 out[absl::StrCat("node ", n.name)] =
                     absl::StrCat("node ", n.name, " is ", n.state);
               }
             }
             return out;
           },
       .tenants_at_quota =
           [&identity, &controller] {
             std::map<std::string, std::string> out;
             auto tenants = (*identity)->ListTenants();
             if (!tenants.ok()) return out;
             for (const Tenant& t : *tenants) {
               if (t.quota == TenantQuota{}) continue;
               TenantUsage u = controller.Usage(t.id);
               std::vector<std::string> full;
               if (t.quota.gpus && u.gpus >= *t.quota.gpus)
                 full.push_back(absl::StrCat("gpus ", u.gpus, " of ", *t.quota.gpus));
               if (t.quota.cpu_millis && u.cpu_millis >= *t.quota.cpu_millis)
                 full.push_back(absl::StrCat("cpus ", FormatCpuMillis(u.cpu_millis), " of ",
                                             FormatCpuMillis(*t.quota.cpu_millis)));
               if (t.quota.memory_bytes && u.memory_bytes >= *t.quota.memory_bytes)
                 full.push_back(absl::StrCat("memory ", FormatMemoryBytes(u.memory_bytes), " of ",
                                             FormatMemoryBytes(*t.quota.memory_bytes)));
               if (t.quota.running_jobs && u.running_jobs >= *t.quota.running_jobs)
                 full.push_back(
                     absl::StrCat("running jobs ", u.running_jobs, " of ", *t.quota.running_jobs));
               if (!full.empty()) {
                 out[absl::StrCat("tenant ", t.name)] =
                     absl::StrCat("tenant ", t.name, " at its quota: ", absl::StrJoin(full, ", "));
               }
             }
             return out;
           }});
  RegisterMonitorRoutes({.gate = &gate,
                         .monitor = &monitor,
                         .backend = config.backend,
                         .inventory = [&backend, &controller, &store,
                                       &config]() -> absl::StatusOr<std::vector<BackendNode>> {
                           auto nodes = (*backend)->Inventory();
                           if (!nodes.ok() || config.backend != "local" || nodes->empty())
                             return nodes;
                           // The local backend's node: what dlab's running attempts hold.
                           BackendNode& node = nodes->front();
                           for (const auto& r : controller.Running()) {
                             auto job = store->GetJob(r.job_id);
                             if (!job.ok() || job->attempt_list.empty()) continue;
                             const Allocation& a = job->attempt_list.back().allocation;
                             node.cpu_millis_used += a.cpu_millis;
                             node.memory_bytes_used += a.memory_bytes;
                           }
                           return nodes;
                         },
                         .gpu_holders =
                             [&controller] {
                               std::map<int, int64_t> out;
                               for (const auto& r : controller.Running()) {
                                 for (int g : r.gpus) out[g] = r.job_id;
                               }
                               return out;
                             }},
                        &router);
  RegisterConsoleRoutes(ConsoleDir(config), &router);
  RegisterRoutes({.store = store,
                  .snapshots = &snapshots,
                  .controller = &controller,
                  .metrics = &metrics,
                  .gate = &gate,
                  .max_snapshot_bytes = static_cast<size_t>(config.max_snapshot_bytes),
                  .extra_metrics = [&monitor] { return monitor.Prometheus(); },
                  .job_changes = [&counting_store] { return counting_store.changes(); }},
                 &router);
  RegisterMetricsRoutes(
      {.store = store,
       .metrics = metrics_store,
       .verify_job_token =
           [&tokens](int64_t job_id, std::string_view token) {
             return tokens->Verify(job_id, absl::string_view(token.data(), token.size()));
           },
       .authorize_user =
           [&gate, &store](const HttpRequest& req, int64_t job_id) {
             auto caller = gate.Authenticate(req);
             if (!caller.ok()) return caller.status();
             return VisibleJob(store, *caller, job_id).status();
           },
       .job_code = [&store, &snapshots](int64_t job_id) -> absl::StatusOr<std::string> {
         auto job = store->GetJob(job_id);
         if (!job.ok()) return job.status();
         if (job->snapshot.empty()) {
           return absl::NotFoundError(absl::StrCat("job ", job_id, " has no code snapshot"));
         }
         return snapshots.Read(job->snapshot);
       },
       .on_checkpoint = [&controller](int64_t job_id) { controller.Checkpointed(job_id); }},
      &router);
  RegisterIdentityRoutes({.gate = &gate, .identity = identity->get(), .controller = &controller},
                         &router);
  // Scalars that jobs write with TensorBoard under $DLAB_OUTPUT_DIR/tensorboard.
  TensorBoardIngester tensorboard(metrics_store, [&controller] {
    std::vector<WatchedJob> jobs;
    for (const auto& r : controller.Running()) {
      jobs.push_back({.job_id = r.job_id,
                      .attempt = r.attempt,
                      .tensorboard_dir = absl::StrCat(r.output_dir, "/tensorboard")});
    }
    return jobs;
  });
  auto server =
      HttpServer::Start({.host = config.host,
                         .port = config.port,
                         .threads = config.http_threads,
                         .on_response =
                             [&metrics](const HttpRequest& r, int status, absl::Duration elapsed) {
                               metrics.ObserveRequest(r.method, status, elapsed);
                             }},
                        std::move(router));
  if (!server.ok()) return server.status();
  // Workloads learn the real port, also when --listen asked for port 0.
  std::string api_host =
      config.host == "0.0.0.0" || config.host.empty() ? "127.0.0.1" : config.host;
  if (api_host.find(':') != std::string::npos) api_host = absl::StrCat("[", api_host, "]");
  std::string api_url = absl::StrCat("http://", api_host, ":", (*server)->port());
  if (config.backend == "slurm" && !config.slurm_api_url.empty()) api_url = config.slurm_api_url;
  if (auto s = controller.Start(api_url); !s.ok()) {
    return s;
  }
  tensorboard.Start();
  monitor.Start();
  std::printf("dlabd listening on http://%s:%d\n", config.host.c_str(), (*server)->port());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down; running jobs keep running", sig);
  (*server)->Stop();
  tensorboard.Stop();
  monitor.Stop();  // its thread asks the controller and the backend
  controller.Stop();
  backend->reset();  // joins its notification thread, which calls into the controller
  return absl::OkStatus();
}

}  // namespace dlab
