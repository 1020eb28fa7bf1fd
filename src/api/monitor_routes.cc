#include "api/monitor_routes.h"

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

}  // namespace

void RegisterMonitorRoutes(const MonitorApiContext& ctx, Router* router) {
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
