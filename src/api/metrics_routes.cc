#include "api/metrics_routes.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "api/json_util.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;

constexpr size_t kMaxReports = 100'000;
constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxNamesPerQuery = 1000;
constexpr int64_t kDefaultMaxPoints = 1000;
constexpr int64_t kMaxMaxPoints = 10'000;
constexpr absl::string_view kBatchFields[] = {"attempt", "reports"};
constexpr absl::string_view kReportFields[] = {"step", "time", "metrics"};
constexpr absl::string_view kCheckpointFields[] = {"attempt", "step", "path", "metrics"};

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// The id of an existing job; NotFound otherwise.
absl::StatusOr<int64_t> ExistingJob(const MetricsApiContext& ctx, const HttpRequest& req) {
  auto id = JobIdParam(req);
  if (!id.ok()) return id;
  if (auto job = ctx.store->GetJob(*id); !job.ok()) return job.status();
  return id;
}

// How long after its job ended a job token is still taken (the SDK's last flush).
constexpr absl::Duration kTokenLifeAfterEnd = absl::Minutes(5);

// The id of an existing job whose token is still alive: the job has not ended, or ended less
// than kTokenLifeAfterEnd ago. Unauthenticated after that, NotFound for an unknown job.
absl::StatusOr<int64_t> LiveJob(const MetricsApiContext& ctx, const HttpRequest& req) {
  auto id = JobIdParam(req);
  if (!id.ok()) return id;
  auto job = ctx.store->GetJob(*id);
  if (!job.ok()) return job.status();
  if (IsTerminal(job->state) && job->end_time &&
      absl::Now() - *job->end_time > kTokenLifeAfterEnd) {
    return absl::UnauthenticatedError(
        absl::StrCat("Authorization: job ", *id, " ended at ", FormatRfc3339(*job->end_time),
                     "; its token expired ", absl::FormatDuration(kTokenLifeAfterEnd), " later"));
  }
  return id;
}

// Writes about a job need its own token: "Authorization: Bearer <token>". A user's signed
// request gets the answer a user gets for the job (404 when they cannot see it), else 403.
absl::Status Authenticate(const MetricsApiContext& ctx, const HttpRequest& req) {
  auto id = JobIdParam(req);
  if (!id.ok()) return id.status();
  auto header = req.Header("authorization");
  absl::string_view value = header ? absl::StripAsciiWhitespace(*header) : "";
  if (absl::StartsWith(value, "DLAB-HMAC-SHA256") && ctx.authorize_user) {
    if (auto s = ctx.authorize_user(req, *id); !s.ok()) return s;
    return absl::PermissionDeniedError(
        "metrics and checkpoints are written (and the code snapshot read) by the job itself, with "
        "its token (DLAB_TOKEN)");
  }
  if (!header) {
    return absl::UnauthenticatedError(
        "Authorization: missing; send \"Authorization: Bearer <token>\" with the job's own token");
  }
  if (!absl::StartsWithIgnoreCase(value, "bearer ")) {
    return absl::UnauthenticatedError("Authorization: expected \"Bearer <token>\"");
  }
  absl::string_view token = absl::StripLeadingAsciiWhitespace(value.substr(7));
  if (token.empty() || !ctx.verify_job_token ||
      !ctx.verify_job_token(*id, std::string_view(token.data(), token.size()))) {
    return absl::UnauthenticatedError(
        absl::StrCat("Authorization: the token is not the token of job ", *id));
  }
  return absl::OkStatus();
}

// Reads need a user who may see the job.
absl::Status AuthorizeRead(const MetricsApiContext& ctx, const HttpRequest& req) {
  auto id = JobIdParam(req);
  if (!id.ok()) return id.status();
  if (!ctx.authorize_user) return absl::UnauthenticatedError("reads are not configured");
  return ctx.authorize_user(req, *id);
}

HttpResponse Error(const absl::Status& status) {
  HttpResponse response = ErrorResponse(status);
  if (absl::IsUnauthenticated(status)) response.headers.emplace_back("WWW-Authenticate", "Bearer");
  return response;
}

absl::StatusOr<json> ParseObject(const HttpRequest& req, absl::string_view example) {
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("body: not valid JSON at byte ", e.byte, " (expected ", example, ")"));
  } catch (const json::exception& e) {  // e.g. "[json.exception.out_of_range.406] number overflow"
    absl::string_view what = e.what();
    if (auto end = what.find("] "); end != absl::string_view::npos) what.remove_prefix(end + 2);
    return absl::InvalidArgumentError(absl::StrCat("body: ", what));
  }
  if (!body.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("body: must be an object like ", example));
  }
  return body;
}

// The first key of object that is not one of known; nullptr when all are known.
const std::string* UnknownField(const json& object, absl::Span<const absl::string_view> known) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) return &it.key();
  }
  return nullptr;
}

absl::Status UnknownFieldError(absl::string_view field, absl::Span<const absl::string_view> known) {
  return Invalid(field, absl::StrCat("unknown field (known: ", absl::StrJoin(known, ", "), ")"));
}

// v as an integer in [0, max]; nullopt when it is anything else.
std::optional<int64_t> NonNegativeInt(const json& v, int64_t max = INT64_MAX) {
  if (v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(max)) {
    return v.get<int64_t>();
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= max) {
    return v.get<int64_t>();
  }
  return std::nullopt;
}

// The attempt field shared by both POST bodies: optional, default 0.
absl::StatusOr<int> Attempt(const json& body) {
  auto it = body.find("attempt");
  if (it == body.end() || it->is_null()) return 0;
  auto attempt = NonNegativeInt(*it, INT_MAX);
  if (!attempt) return Invalid("attempt", "must be an integer >= 0 (the job's attempt number)");
  return static_cast<int>(*attempt);
}

// What is wrong with one "name": value entry of a metrics object; nullptr when nothing is.
const char* MetricProblem(const std::string& name, const json& value) {
  if (name.empty()) return "metric names must not be empty";
  if (name.size() > kMaxNameBytes) return "metric name longer than 256 bytes";
  if (absl::StartsWith(name, kSystemMetricPrefix)) {
    return "metric names starting with system/ are reserved for what dlab measures itself";
  }
  if (!value.is_number()) return "must be a number";
  if (!std::isfinite(value.get<double>())) return "must be a finite number";
  return nullptr;
}

// object_field: where the metrics object is, e.g. "reports[3].metrics".
absl::Status MetricError(absl::string_view object_field, const std::string& name,
                         const char* problem) {
  if (name.empty()) return Invalid(object_field, problem);
  if (name.size() > kMaxNameBytes) {
    return Invalid(absl::StrCat(object_field, ".", name.substr(0, 32), "..."), problem);
  }
  return Invalid(absl::StrCat(object_field, ".", name), problem);
}

struct ReportBatch {
  int attempt = 0;
  std::vector<MetricReport> reports;
};

absl::StatusOr<ReportBatch> ParseReports(const HttpRequest& req) {
  auto body = ParseObject(
      req,
      R"({"attempt": 1, "reports": [{"step": 10, "time": 1763800000.5, "metrics": {"loss": 0.5}}]})");
  if (!body.ok()) return body.status();
  if (const std::string* key = UnknownField(*body, kBatchFields)) {
    return UnknownFieldError(*key, kBatchFields);
  }
  ReportBatch batch;
  auto attempt = Attempt(*body);
  if (!attempt.ok()) return attempt.status();
  batch.attempt = *attempt;
  auto reports = body->find("reports");
  if (reports == body->end()) return Invalid("reports", "is required (an array of reports)");
  if (!reports->is_array()) return Invalid("reports", "must be an array of reports");
  if (reports->size() > kMaxReports) {
    return Invalid("reports", absl::StrCat("at most ", kMaxReports, " reports per request, got ",
                                           reports->size(), "; send them in several requests"));
  }
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  batch.reports.reserve(reports->size());
  for (size_t i = 0; i < reports->size(); ++i) {
    // Field names for messages are built only when something is wrong: this is the hot path.
    auto at = [i](absl::string_view sub) { return absl::StrCat("reports[", i, "]", sub); };
    const json& r = (*reports)[i];
    if (!r.is_object()) return Invalid(at(""), "must be an object with step and metrics");
    if (const std::string* key = UnknownField(r, kReportFields)) {
      return UnknownFieldError(at(absl::StrCat(".", *key)), kReportFields);
    }
    MetricReport report;
    auto step = r.find("step");
    if (step == r.end()) return Invalid(at(".step"), "is required");
    auto step_value = NonNegativeInt(*step);
    if (!step_value) return Invalid(at(".step"), "must be an integer >= 0");
    report.step = *step_value;
    report.time = now;
    if (auto t = r.find("time"); t != r.end() && !t->is_null()) {
      if (!t->is_number() || !std::isfinite(t->get<double>())) {
        return Invalid(at(".time"), "must be a number (Unix seconds)");
      }
      report.time = t->get<double>();
    }
    auto metrics = r.find("metrics");
    if (metrics == r.end() || !metrics->is_object()) {
      return Invalid(at(".metrics"), "is required: an object of metric name to number");
    }
    report.values.reserve(metrics->size());
    for (const auto& [name, value] : metrics->items()) {
      if (const char* problem = MetricProblem(name, value)) {
        return MetricError(at(".metrics"), name, problem);
      }
      report.values.push_back({.name = name, .value = value.get<double>()});
    }
    batch.reports.push_back(std::move(report));
  }
  return batch;
}

HttpResponse PostMetrics(const MetricsApiContext& ctx, const HttpRequest& req) {
  if (auto s = Authenticate(ctx, req); !s.ok()) return Error(s);
  auto id = LiveJob(ctx, req);
  if (!id.ok()) return Error(id.status());
  auto batch = ParseReports(req);
  if (!batch.ok()) return Error(batch.status());
  auto written = ctx.metrics->Append(*id, batch->attempt, batch->reports);
  if (!written.ok()) return Error(written.status());
  return JsonResponse(200, {{"accepted", *written}});
}

json PointJson(const MetricPoint& p) { return json::array({p.step, p.time, p.value}); }

HttpResponse GetMetrics(const MetricsApiContext& ctx, const HttpRequest& req) {
  if (auto s = AuthorizeRead(ctx, req); !s.ok()) return ErrorResponse(s);
  auto id = ExistingJob(ctx, req);
  if (!id.ok()) return Error(id.status());
  std::vector<std::string> names;
  auto [begin, end] = req.query.equal_range("name");
  for (auto it = begin; it != end; ++it) {
    for (absl::string_view name : absl::StrSplit(it->second, ',', absl::SkipEmpty())) {
      names.emplace_back(name);
    }
  }
  if (names.size() > kMaxNamesPerQuery) {
    return Error(
        Invalid("name", absl::StrCat("at most ", kMaxNamesPerQuery, " names per request")));
  }
  int64_t max_points = kDefaultMaxPoints;
  if (auto text = req.Query("max_points")) {
    auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), max_points);
    if (ec != std::errc() || ptr != text->data() + text->size() || max_points < 1 ||
        max_points > kMaxMaxPoints) {
      return Error(Invalid("max_points", absl::StrCat("must be an integer between 1 and ",
                                                      kMaxMaxPoints, ", got '", *text, "'")));
    }
  }
  auto series = ctx.metrics->Series(*id, names, static_cast<int>(max_points));
  if (!series.ok()) return Error(series.status());
  json list = json::array();
  for (const MetricSeries& s : *series) {
    json points = json::array();
    for (const MetricPoint& p : s.points) points.push_back(PointJson(p));
    list.push_back(
        {{"name", s.name},
         {"count", s.count},
         {"points", std::move(points)},
         {"latest",
          {{"step", s.latest.step}, {"time", s.latest.time}, {"value", s.latest.value}}}});
  }
  return JsonResponse(200, {{"job_id", *id}, {"series", std::move(list)}});
}

json CheckpointJson(const CheckpointRecord& c) {
  return {
      {"id", c.id},     {"job_id", c.job_id},   {"attempt", c.attempt},         {"step", c.step},
      {"path", c.path}, {"metrics", c.metrics}, {"time", FormatRfc3339(c.time)}};
}

absl::StatusOr<CheckpointRecord> ParseCheckpoint(const HttpRequest& req, int64_t job_id) {
  auto body = ParseObject(
      req, R"({"attempt": 1, "step": 100, "path": "/abs/dir", "metrics": {"loss": 0.3}})");
  if (!body.ok()) return body.status();
  if (const std::string* key = UnknownField(*body, kCheckpointFields)) {
    return UnknownFieldError(*key, kCheckpointFields);
  }
  CheckpointRecord record{.job_id = job_id};
  auto attempt = Attempt(*body);
  if (!attempt.ok()) return attempt.status();
  record.attempt = *attempt;
  auto step = body->find("step");
  if (step == body->end()) {
    return Invalid("step", "is required (the training step the checkpoint was taken at)");
  }
  auto step_value = NonNegativeInt(*step);
  if (!step_value) return Invalid("step", "must be an integer >= 0");
  record.step = *step_value;
  auto path = body->find("path");
  if (path == body->end()) return Invalid("path", "is required (the checkpoint's absolute path)");
  if (!path->is_string()) return Invalid("path", "must be a string");
  record.path = path->get<std::string>();
  if (record.path.empty() || record.path[0] != '/') {
    return Invalid("path", absl::StrCat("must be an absolute path, got '", record.path, "'"));
  }
  if (record.path.size() > kMaxPathBytes || record.path.find('\0') != std::string::npos) {
    return Invalid("path", absl::StrCat("must be at most ", kMaxPathBytes, " bytes, without NUL"));
  }
  if (auto metrics = body->find("metrics"); metrics != body->end() && !metrics->is_null()) {
    if (!metrics->is_object()) return Invalid("metrics", "must be an object of name to number");
    for (const auto& [name, value] : metrics->items()) {
      if (const char* problem = MetricProblem(name, value)) {
        return MetricError("metrics", name, problem);
      }
      record.metrics[name] = value.get<double>();
    }
  }
  return record;
}

HttpResponse PostCheckpoint(const MetricsApiContext& ctx, const HttpRequest& req) {
  if (auto s = Authenticate(ctx, req); !s.ok()) return Error(s);
  auto id = LiveJob(ctx, req);
  if (!id.ok()) return Error(id.status());
  auto record = ParseCheckpoint(req, *id);
  if (!record.ok()) return Error(record.status());
  auto added = ctx.metrics->AddCheckpoint(*record);
  if (!added.ok()) return Error(added.status());
  if (ctx.on_checkpoint) ctx.on_checkpoint(*id);
  return JsonResponse(201, CheckpointJson(*added));
}

HttpResponse ListCheckpoints(const MetricsApiContext& ctx, const HttpRequest& req) {
  if (auto s = AuthorizeRead(ctx, req); !s.ok()) return ErrorResponse(s);
  auto id = ExistingJob(ctx, req);
  if (!id.ok()) return Error(id.status());
  auto list = ctx.metrics->ListCheckpoints(*id);
  if (!list.ok()) return Error(list.status());
  json out = json::array();
  for (const CheckpointRecord& c : *list) out.push_back(CheckpointJson(c));
  return JsonResponse(200, {{"checkpoints", std::move(out)}});
}

// The code snapshot, for the job's own token: what a pod's init container unpacks.
HttpResponse GetCode(const MetricsApiContext& ctx, const HttpRequest& req) {
  if (auto s = Authenticate(ctx, req); !s.ok()) return Error(s);
  auto id = LiveJob(ctx, req);
  if (!id.ok()) return Error(id.status());
  if (!ctx.job_code) return Error(absl::NotFoundError("code snapshots are not served here"));
  auto code = ctx.job_code(*id);
  if (!code.ok()) return Error(code.status());
  return HttpResponse{.status = 200, .content_type = "application/gzip", .body = *std::move(code)};
}

}  // namespace

void RegisterMetricsRoutes(const MetricsApiContext& ctx, Router* router) {
  router->Add("POST", "/api/v1/jobs/{id}/metrics",
              [ctx](const HttpRequest& r) { return PostMetrics(ctx, r); },
              {.max_body_bytes = ctx.max_report_bytes});
  router->Add("GET", "/api/v1/jobs/{id}/metrics",
              [ctx](const HttpRequest& r) { return GetMetrics(ctx, r); });
  router->Add("POST", "/api/v1/jobs/{id}/checkpoints",
              [ctx](const HttpRequest& r) { return PostCheckpoint(ctx, r); });
  router->Add("GET", "/api/v1/jobs/{id}/checkpoints",
              [ctx](const HttpRequest& r) { return ListCheckpoints(ctx, r); });
  router->Add("GET", "/api/v1/jobs/{id}/code",
              [ctx](const HttpRequest& r) { return GetCode(ctx, r); });
}

}  // namespace dlab
