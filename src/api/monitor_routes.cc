#include "api/monitor_routes.h"

#include <memory>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "api/json_util.h"
#include "common/quantity.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using json = nlohmann::json;

json EventsJson(const std::vector<AlertEvent>& events) {
  json out = json::array();
  for (const AlertEvent& e : events) out.push_back(AlertEventJson(e));
  return out;
}

// ?since=10m (default: the whole window): the samples of that last stretch, oldest first.
HttpResponse Telemetry(const MonitorApiContext& ctx, const HttpRequest& req) {
  absl::Duration since = absl::InfiniteDuration();
  if (auto q = req.Query("since")) {
    auto d = ParseDuration(*q);
    if (!d.ok() || *d <= absl::ZeroDuration()) {
      return ErrorResponse(absl::InvalidArgumentError(
          absl::StrCat("since: must be a positive duration like 10m, got '", *q, "'")));
    }
    since = *d;
  }
  auto latest = ctx.monitor->telemetry().Latest();
  json samples = json::array();
  absl::Time from = since == absl::InfiniteDuration() ? absl::InfinitePast() : absl::Now() - since;
  for (const TelemetrySample& s : ctx.monitor->telemetry().Since(from)) {
    samples.push_back(TelemetryJson(s));
  }
  return JsonResponse(
      200, {{"latest", latest ? TelemetryJson(*latest) : json(nullptr)}, {"samples", samples}});
}

// GET /api/v1/nodes. The inventory is read at most every 2 s (on Slurm it runs sinfo), shared by
// every caller.
class NodesRoute {
 public:
  explicit NodesRoute(MonitorApiContext ctx) : ctx_(std::move(ctx)) {}

  HttpResponse operator()() {
    absl::StatusOr<std::vector<BackendNode>> nodes = Inventory();
    if (!nodes.ok()) return ErrorResponse(nodes.status());
    std::map<int, int64_t> holders =
        ctx_.gpu_holders ? ctx_.gpu_holders() : std::map<int, int64_t>{};
    const bool local = ctx_.backend == "local";
    json list = json::array();
    for (const BackendNode& n : *nodes) {
      json gpus = json::array();
      for (const BackendNode::Gpu& g : n.gpus) {
        auto holder = holders.find(g.index);
        gpus.push_back(
            {{"index", g.index},
             {"type", g.type},
             {"model", g.model},
             {"job", local && holder != holders.end() ? json(holder->second) : json(nullptr)}});
      }
      list.push_back({{"name", n.name},
                      {"state", n.state},
                      {"cpus", FormatCpuMillis(n.cpu_millis)},
                      {"memory", FormatMemoryBytes(n.memory_bytes)},
                      {"cpus_used", FormatCpuMillis(n.cpu_millis_used)},
                      {"memory_used", FormatMemoryBytes(n.memory_bytes_used)},
                      {"gpus", std::move(gpus)}});
    }
    return JsonResponse(
        200, {{"backend", ctx_.backend}, {"gpu_holders_known", local}, {"nodes", std::move(list)}});
  }

 private:
  absl::StatusOr<std::vector<BackendNode>> Inventory() {
    if (!ctx_.inventory) return std::vector<BackendNode>{};
    std::lock_guard<std::mutex> lock(mu_);
    absl::Time now = absl::Now();
    if (!cached_ || now - read_at_ > absl::Seconds(2)) {
      cached_ = ctx_.inventory();
      read_at_ = now;
    }
    return *cached_;
  }

  MonitorApiContext ctx_;
  std::mutex mu_;
  std::optional<absl::StatusOr<std::vector<BackendNode>>> cached_;
  absl::Time read_at_;
};

}  // namespace

void RegisterMonitorRoutes(const MonitorApiContext& ctx, Router* router) {
  auto nodes = std::make_shared<NodesRoute>(ctx);
  router->Add("GET", "/api/v1/nodes",
              ctx.gate->Wrap(Access::kViewer, "nodes.list",
                             [nodes](const HttpRequest&, const Caller&) { return (*nodes)(); }));
  router->Add(
      "GET", "/api/v1/telemetry",
      ctx.gate->Wrap(Access::kViewer, "telemetry.get",
                     [ctx](const HttpRequest& r, const Caller&) { return Telemetry(ctx, r); }));
  router->Add(
      "GET", "/api/v1/alerts",
      ctx.gate->Wrap(Access::kViewer, "alerts.list", [ctx](const HttpRequest&, const Caller&) {
        WebhookStats stats = ctx.monitor->webhook_stats();
        return JsonResponse(200, {{"firing", EventsJson(ctx.monitor->Firing())},
                                  {"recent", EventsJson(ctx.monitor->Recent())},
                                  {"webhooks",
                                   {{"delivered", stats.delivered},
                                    {"failed", stats.failed},
                                    {"pending", stats.pending}}}});
      }));
}

}  // namespace dlab
