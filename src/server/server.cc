#include "server/server.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "api/http_server.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "backend/local/local_backend.h"
#include "backend/local/node_resources.h"
#include "common/file_util.h"
#include "common/quantity.h"
#include "sched/job_controller.h"
#include "spdlog/spdlog.h"
#include "store/snapshot_store.h"
#include "store/store.h"

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
  SnapshotStore snapshots(absl::StrCat(data_dir, "/snapshots"));
  auto backend = NewLocalBackend({.shim_path = ShimPath(config), .data_dir = data_dir});
  if (!backend.ok()) return backend.status();

  Metrics metrics;
  JobController controller(
      {.data_dir = data_dir, .node = DiscoverNode(config), .kill_grace = config.kill_grace},
      store->get(), &snapshots, backend->get(),
      {.on_started = [&metrics](absl::Duration d) { metrics.ObserveSchedulingLatency(d); }});
  Router router;
  RegisterRoutes({.store = store->get(),
                  .snapshots = &snapshots,
                  .controller = &controller,
                  .metrics = &metrics,
                  .max_snapshot_bytes = static_cast<size_t>(config.max_snapshot_bytes)},
                 &router);
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
  std::printf("dlabd listening on http://%s:%d\n", config.host.c_str(), (*server)->port());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down; running jobs keep running", sig);
  (*server)->Stop();
  controller.Stop();
  backend->reset();  // joins its notification thread, which calls into the controller
  return absl::OkStatus();
}

}  // namespace dlab
