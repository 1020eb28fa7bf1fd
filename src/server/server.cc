#include "server/server.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "api/http_server.h"
#include "api/metrics.h"
#include "api/metrics_routes.h"
#include "api/routes.h"
#include "backend/local/local_backend.h"
#include "backend/local/node_resources.h"
#include "common/file_util.h"
#include "common/job_token.h"
#include "common/quantity.h"
#include "sched/job_controller.h"
#include "spdlog/spdlog.h"
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

std::string ShimPath(const ServerConfig& config) {
  if (!config.shim_path.empty()) return config.shim_path;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / "dlab-shim").string();
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

  auto store = Store::OpenSqlite(absl::StrCat(data_dir, "/dlab.db"));
  if (!store.ok()) return store.status();
  auto training = MetricsStore::OpenSqlite(absl::StrCat(data_dir, "/metrics.db"));
  if (!training.ok()) return training.status();
  auto tokens = JobTokens::LoadOrCreate(absl::StrCat(data_dir, "/secret"));
  if (!tokens.ok()) return tokens.status();
  SnapshotStore snapshots(absl::StrCat(data_dir, "/snapshots"));
  auto backend = NewLocalBackend({.shim_path = ShimPath(config), .data_dir = data_dir});
  if (!backend.ok()) return backend.status();

  Metrics metrics;
  MetricsStore* metrics_store = training->get();
  JobController controller(
      {.data_dir = data_dir,
       .node = DiscoverNode(config),
       .kill_grace = config.kill_grace,
       .first_port = config.first_port,
       .last_port = config.last_port,
       .latest_checkpoint = [metrics_store](int64_t job_id) -> std::optional<CheckpointRef> {
         auto latest = metrics_store->LatestCheckpoint(job_id);
         if (!latest.ok()) {
           spdlog::warn("job {}: cannot read its checkpoints: {}", job_id,
                        latest.status().ToString());
           return std::nullopt;
         }
         if (!latest->has_value()) return std::nullopt;
         return CheckpointRef{
             .id = (*latest)->id, .step = (*latest)->step, .path = (*latest)->path};
       },
       .python_sdk_dir = PythonSdkDir(),
       .job_token = [&tokens](int64_t job_id) { return tokens->Token(job_id); }},
      store->get(), &snapshots, backend->get(),
      {.on_started = [&metrics](absl::Duration d) { metrics.ObserveSchedulingLatency(d); }});
  Router router;
  RegisterRoutes({.store = store->get(),
                  .snapshots = &snapshots,
                  .controller = &controller,
                  .metrics = &metrics,
                  .max_snapshot_bytes = static_cast<size_t>(config.max_snapshot_bytes)},
                 &router);
  RegisterMetricsRoutes({.store = store->get(),
                         .metrics = metrics_store,
                         .verify_job_token =
                             [&tokens](int64_t job_id, std::string_view token) {
                               return tokens->Verify(job_id,
                                                     absl::string_view(token.data(), token.size()));
                             }},
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
  if (auto s = controller.Start(absl::StrCat("http://", api_host, ":", (*server)->port()));
      !s.ok()) {
    return s;
  }
  tensorboard.Start();
  std::printf("dlabd listening on http://%s:%d\n", config.host.c_str(), (*server)->port());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down; running jobs keep running", sig);
  (*server)->Stop();
  tensorboard.Stop();
  controller.Stop();
  backend->reset();  // joins its notification thread, which calls into the controller
  return absl::OkStatus();
}

}  // namespace dlab
