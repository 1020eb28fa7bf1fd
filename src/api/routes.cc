#include "api/routes.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "api/gzip.h"
#include "api/json_util.h"
#include "common/job_spec.h"
#include "common/quantity.h"
#include "common/tasks.h"
#include "common/yaml_json.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;

constexpr size_t kMaxLabelFilters = 20;

json Time(const std::optional<absl::Time>& t) {
  if (!t) return nullptr;
  return FormatRfc3339(*t);
}

json OptInt(const std::optional<int>& v) { return v ? json(*v) : json(nullptr); }

json AttemptJson(const AttemptRecord& a) {
  json tasks = json::array();
  for (const TaskEnd& t : a.tasks) {
    json task = {{"rank", t.rank},
                 {"role", t.role},
                 {"role_index", t.role_index},
                 {"exit_code", OptInt(t.exit_code)},
                 {"signal", t.signal},
                 {"end_reason", t.end_reason}};
    auto alloc = static_cast<size_t>(t.rank) < a.allocation.tasks.size()
                     ? a.allocation.tasks[t.rank].gpus
                     : std::vector<int>{};
    task["gpus"] = alloc;
    tasks.push_back(std::move(task));
  }
  return {{"attempt", a.number},
          {"state", JobStateName(a.state)},
          {"reason", a.reason},
          {"exit_code", OptInt(a.exit_code)},
          {"create_time", Time(a.create_time)},
          {"start_time", Time(a.start_time)},
          {"end_time", Time(a.end_time)},
          {"allocation",
           {{"cpus", FormatCpuMillis(a.allocation.cpu_millis)},
            {"memory", FormatMemoryBytes(a.allocation.memory_bytes)},
            {"gpus", a.allocation.gpus},
            {"ports", a.allocation.ports}}},
          {"limits", a.limit_notes},
          {"failure", a.failure.empty() ? json(nullptr) : json(a.failure)},
          {"restart_counted", a.restart_counted},
          {"resumed_from", a.resumed_from ? json{{"id", a.resumed_from->id},
                                                 {"step", a.resumed_from->step},
                                                 {"path", a.resumed_from->path}}
                                          : json(nullptr)},
          {"tasks", std::move(tasks)}};
}

json JobJson(const ApiContext& ctx, const JobRecord& j) {
  json list = json::array();
  for (const auto& a : j.attempt_list) list.push_back(AttemptJson(a));
  return json{{"id", j.id},
              {"name", j.spec.name},
              {"tenant", ctx.gate->TenantName(j.tenant_id)},
              {"owner", j.owner},
              {"state", JobStateName(j.state)},
              {"reason", j.reason},
              {"spec", JobSpecToJson(j.spec)},
              {"snapshot", j.snapshot},
              {"priority", j.spec.priority},
              {"labels", j.spec.labels},
              {"submit_time", Time(j.submit_time)},
              {"start_time", Time(j.start_time)},
              {"end_time", Time(j.end_time)},
              {"exit_code", OptInt(j.exit_code)},
              {"cancel_requested", j.cancel_requested},
              {"attempts", j.attempts},
              {"tasks", TaskCount(j.spec)},
              {"attempt_list", std::move(list)}};
}

HttpResponse JobResponse(const ApiContext& ctx, int status, const absl::StatusOr<JobRecord>& job) {
  if (!job.ok()) return ErrorResponse(job.status());
  return JsonResponse(status, JobJson(ctx, *job));
}

// The body of POST /api/v1/jobs: {"spec": {...}, "snapshot": "sha256:..."}, JSON or YAML.
absl::StatusOr<json> ParseEnvelope(const HttpRequest& req) {
  std::string type = req.Header("content-type").value_or("application/json");
  json body;
  if (type.find("yaml") != std::string::npos) {
    auto parsed = ParseYamlOrJson(req.body);
    if (!parsed.ok())
      return absl::InvalidArgumentError(absl::StrCat("body: ", parsed.status().message()));
    body = *std::move(parsed);
  } else {
    body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) {
      return absl::InvalidArgumentError(
          "body: not valid JSON (expected {\"spec\": {...}, \"snapshot\": \"...\"})");
    }
  }
  if (!body.is_object())
    return absl::InvalidArgumentError("body: must be an object with a \"spec\" field");
  try {
    (void)body.dump();  // strict: throws on text that is not valid UTF-8
  } catch (const json::type_error&) {
    return absl::InvalidArgumentError("body: contains text that is not valid UTF-8");
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "spec" && key != "snapshot") {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": unknown field (known: spec, snapshot)"));
    }
  }
  if (!body.contains("spec")) return absl::InvalidArgumentError("spec: is required");
  if (body.contains("snapshot") && !body["snapshot"].is_string() && !body["snapshot"].is_null()) {
    return absl::InvalidArgumentError("snapshot: must be a string like sha256:<hex>");
  }
  return body;
}

HttpResponse Submit(const ApiContext& ctx, const HttpRequest& req, const Caller& caller) {
  auto body = ParseEnvelope(req);
  if (!body.ok()) return ErrorResponse(body.status());
  auto spec = ParseJobSpec((*body)["spec"]);
  if (!spec.ok()) return ErrorResponse(spec.status());
  std::string snapshot =
      body->value("snapshot", json("")).is_string() ? body->value("snapshot", "") : "";
  if (!snapshot.empty()) {  // only a snapshot this tenant uploaded
    auto mine = ctx.gate->identity()->SnapshotHasTenant(snapshot, caller.tenant_id);
    if (!mine.ok()) return ErrorResponse(mine.status());
    if (!*mine && !caller.superadmin) {
      return ErrorResponse(absl::NotFoundError(absl::StrCat("snapshot ", snapshot, " not found")));
    }
  }
  auto result = ctx.controller->Submit(*spec, snapshot, req.Header("idempotency-key").value_or(""),
                                       caller.tenant_id, caller.user);
  if (!result.ok()) return ErrorResponse(result.status());
  return JobResponse(ctx, result->created ? 201 : 200, result->job);
}

// One page of GET /api/v1/jobs: {"jobs": [...], "next_cursor": "ID" or null}.
absl::StatusOr<json> JobPage(const ApiContext& ctx, const JobFilter& filter) {
  auto jobs = ctx.store->ListJobs(filter);
  if (!jobs.ok()) return jobs.status();
  json list = json::array();
  for (const JobRecord& j : *jobs) list.push_back(JobJson(ctx, j));
  json next = jobs->size() == static_cast<size_t>(filter.limit)
                  ? json(absl::StrCat(jobs->back().id))
                  : json(nullptr);
  return json{{"jobs", std::move(list)}, {"next_cursor", next}};
}

// The rendered pages of the open job watches, by filter, with the change count they were read
// at: watchers with the same filter (every console of a tenant on its unfiltered jobs table)
// share one query per change instead of one each.
class JobPageCache {
 public:
  // The page for filter as of change count `changes` (read now if the cached one is older).
  absl::StatusOr<std::shared_ptr<const std::string>> Get(const ApiContext& ctx,
                                                         const JobFilter& filter,
                                                         uint64_t changes) {
    std::string key = Key(filter);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pages_.find(key);
      if (it != pages_.end() && it->second.changes == changes) return it->second.body;
    }
    auto page = JobPage(ctx, filter);
    if (!page.ok()) return page.status();
    auto body = std::make_shared<const std::string>(page->dump());
    std::lock_guard<std::mutex> lock(mu_);
    if (pages_.size() > 64) pages_.clear();  // many distinct filters: start over (~0.5 MiB each)
    Entry& e = pages_[key];
    if (e.body == nullptr || e.changes <= changes) e = {changes, body};
    return body;
  }

 private:
  struct Entry {
    uint64_t changes = 0;
    std::shared_ptr<const std::string> body;
  };
  static std::string Key(const JobFilter& f) {
    std::string key = absl::StrCat(f.tenant_id, "|", f.owner, "|", f.before_id, "|", f.limit, "|");
    for (JobState s : f.states) absl::StrAppend(&key, static_cast<int>(s), ",");
    for (const auto& [k, v] : f.labels) absl::StrAppend(&key, "|", k, "=", v);
    return key;
  }
  std::mutex mu_;
  std::map<std::string, Entry> pages_;
};

JobPageCache& SharedJobPages() {
  static JobPageCache* cache = new JobPageCache();
  return *cache;
}

// GET /api/v1/jobs?watch=true: Server-Sent Events, one `event: jobs` with the page at once and
// again whenever it changes (at most once a second), and a comment every 15 s so that idle
// connections stay open. It reads only after the job change count moved, so an idle server
// answers watchers from memory, and watchers with the same filter share one read per change.
class JobListStream : public StreamSource {
 public:
  JobListStream(ApiContext ctx, JobFilter filter)
      : ctx_(std::move(ctx)), filter_(std::move(filter)) {}

  StreamChunk Next() override {
    absl::Time now = absl::Now();
    uint64_t changes = ctx_.job_changes ? ctx_.job_changes() : seen_changes_ + 1;
    if (sent_once_ && (changes == seen_changes_ || now - last_read_ < absl::Seconds(1))) {
      if (now - last_write_ < absl::Seconds(15)) return {};
      last_write_ = now;
      return {.data = ": keepalive\n\n"};
    }
    auto page = Read(changes);
    if (!page.ok()) {
      json error = {{"code", absl::StatusCodeToString(page.status().code())},
                    {"message", page.status().message()}};
      return {.data = absl::StrCat("event: error\ndata: ", error.dump(), "\n\n"), .done = true};
    }
    seen_changes_ = changes;
    last_read_ = now;
    if (sent_once_ && **page == *last_body_) return {};
    sent_once_ = true;
    last_write_ = now;
    last_body_ = *page;
    return {.data = absl::StrCat("event: jobs\ndata: ", **page, "\n\n")};
  }

 private:
  absl::StatusOr<std::shared_ptr<const std::string>> Read(uint64_t changes) {
    if (ctx_.job_changes) return SharedJobPages().Get(ctx_, filter_, changes);
    auto own = JobPage(ctx_, filter_);  // no change count to share pages by: read our own
    if (!own.ok()) return own.status();
    return std::make_shared<const std::string>(own->dump());
  }

  ApiContext ctx_;
  JobFilter filter_;
  uint64_t seen_changes_ = 0;
  bool sent_once_ = false;
  std::shared_ptr<const std::string> last_body_;
  absl::Time last_read_ = absl::InfinitePast();
  absl::Time last_write_ = absl::InfinitePast();
};

HttpResponse List(const ApiContext& ctx, const HttpRequest& req, const Caller& caller) {
  JobFilter filter;
  filter.tenant_id = caller.tenant_id;
  if (auto owner = req.Query("owner"); owner && !owner->empty()) filter.owner = *owner;
  auto limit = IntQuery(req, "limit", 50, 1, 500);
  if (!limit.ok()) return ErrorResponse(limit.status());
  filter.limit = static_cast<int>(*limit);
  auto cursor = IntQuery(req, "cursor", 0, 0, INT64_MAX);
  if (!cursor.ok())
    return ErrorResponse(absl::InvalidArgumentError("cursor: not a cursor from next_cursor"));
  filter.before_id = *cursor;
  auto [sb, se] = req.query.equal_range("state");
  for (auto it = sb; it != se; ++it) {
    for (absl::string_view name : absl::StrSplit(it->second, ',', absl::SkipEmpty())) {
      auto state = ParseJobState(std::string(name));
      if (!state) {
        return ErrorResponse(absl::InvalidArgumentError(
            absl::StrCat("state: unknown state '", std::string(name),
                         "' (QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELLED)")));
      }
      filter.states.push_back(*state);
    }
  }
  auto [lb, le] = req.query.equal_range("label");
  for (auto it = lb; it != le; ++it) {
    auto eq = it->second.find('=');
    if (eq == std::string::npos || eq == 0) {
      return ErrorResponse(absl::InvalidArgumentError(
          absl::StrCat("label: expected key=value, got '", it->second, "'")));
    }
    filter.labels[it->second.substr(0, eq)] = it->second.substr(eq + 1);
  }
  if (filter.labels.size() > kMaxLabelFilters) {
    return ErrorResponse(absl::InvalidArgumentError(
        absl::StrCat("label: at most ", kMaxLabelFilters, " label filters per request")));
  }
  std::sort(filter.states.begin(), filter.states.end());
  filter.states.erase(std::unique(filter.states.begin(), filter.states.end()), filter.states.end());
  std::string watch = req.Query("watch").value_or("false");
  if (watch == "true" || watch == "1") {
    HttpResponse r{.status = 200,
                   .content_type = "text/event-stream",
                   .headers = {{"Cache-Control", "no-cache"}},
                   .stream = std::make_shared<JobListStream>(ctx, filter),
                   .stream_poll = absl::Milliseconds(500)};
    GzipStreamIfAccepted(req, &r);  // a page of 500 jobs is ~500 KiB of JSON, ~10x less zipped
    return r;
  }
  auto page = JobPage(ctx, filter);
  if (!page.ok()) return ErrorResponse(page.status());
  return JsonResponse(200, *page);
}

HttpResponse Events(const ApiContext& ctx, const HttpRequest& req, const Caller& caller) {
  auto id = JobIdParam(req);
  if (!id.ok()) return ErrorResponse(id.status());
  if (auto job = VisibleJob(ctx.store, caller, *id); !job.ok()) return ErrorResponse(job.status());
  auto events = ctx.store->ListEvents(*id);
  if (!events.ok()) return ErrorResponse(events.status());
  json list = json::array();
  for (const EventRecord& e : *events) {
    list.push_back({{"id", e.id},
                    {"job_id", e.job_id},
                    {"time", Time(e.time)},
                    {"from", e.from ? json(JobStateName(*e.from)) : json(nullptr)},
                    {"to", JobStateName(e.to)},
                    {"reason", e.reason}});
  }
  return JsonResponse(200, {{"events", std::move(list)}});
}

// The GPUs of all the job's tasks together.
int TotalGpus(const JobSpec& spec) {
  int gpus = 0;
  for (const TaskInfo& task : ExpandTasks(spec)) gpus += task.resources.gpus;
  return gpus;
}

// The request tenant's queued jobs in scheduling order. Positions count every tenant's queued
// jobs (how many wait ahead), while only the caller's tenant's entries are shown.
HttpResponse Queue(const ApiContext& ctx, const Caller& caller) {
  json list = json::array();
  int position = 0;
  std::shared_ptr<const JobController::QueueForecast> forecast = ctx.controller->Queue();
  for (const JobController::QueuedJobView& view : forecast->jobs) {
    ++position;
    if (view.tenant_id != caller.tenant_id) continue;
    auto job = ctx.store->GetJob(view.job_id);
    if (absl::IsNotFound(job.status())) continue;
    if (!job.ok()) return ErrorResponse(job.status());
    if (job->tenant_id != caller.tenant_id || IsTerminal(job->state)) continue;  // ended since
    list.push_back({{"position", position},
                    {"id", job->id},
                    {"name", job->spec.name},
                    {"owner", job->owner},
                    {"priority", job->spec.priority},
                    {"gpus", TotalGpus(job->spec)},
                    {"submit_time", Time(job->submit_time)},
                    {"reason", view.reason.empty() ? job->reason : view.reason},
                    {"estimated_start", Time(view.estimated_start)}});
  }
  return JsonResponse(200, {{"jobs", std::move(list)},
                            {"forecast_time", Time(forecast->time)},
                            {"policy", ctx.controller->policy()}});
}

// Where the last n lines of the file at path begin (0 when it has fewer), found by reading
// backwards from the end in blocks, so that a large log is never read whole.
int64_t TailOffset(const std::string& path, int64_t n) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return 0;
  int64_t pos = in.tellg();
  int64_t newlines = 0;
  bool skip_last = true;  // a newline that ends the file does not start a line
  std::string block;
  while (pos > 0) {
    int64_t len = std::min<int64_t>(pos, 64 << 10);
    pos -= len;
    block.resize(static_cast<size_t>(len));
    in.seekg(pos);
    in.read(block.data(), len);
    for (int64_t i = len - 1; i >= 0; --i) {
      if (block[static_cast<size_t>(i)] != '\n') {
        skip_last = false;
        continue;
      }
      if (skip_last) {
        skip_last = false;
        continue;
      }
      if (++newlines == n) return pos + i + 1;
    }
  }
  return 0;
}

// Reads up to max bytes of the file at path from offset.
std::string ReadChunk(const std::string& path, int64_t offset, int64_t max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(offset);
  std::string out(static_cast<size_t>(max), '\0');
  in.read(out.data(), max);
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

// A log file sent as it is, a chunk at a time (bounded memory for large logs).
class FileStream final : public StreamSource {
 public:
  FileStream(std::string path, int64_t offset) : path_(std::move(path)), offset_(offset) {}
  StreamChunk Next() override {
    std::string data = ReadChunk(path_, offset_, 256 << 10);
    offset_ += static_cast<int64_t>(data.size());
    bool done = data.empty();
    return {.data = std::move(data), .done = done};
  }

 private:
  std::string path_;
  int64_t offset_;
};

// Follows a job's log as Server-Sent Events: one "data:" event per line; moves on to a new
// attempt's log when the job restarts; ends with an "end" event once the job has ended.
class LogStream final : public StreamSource {
 public:
  LogStream(const ApiContext& ctx, int64_t job_id, int attempt, bool fixed_attempt, int task,
            int64_t tail)
      : ctx_(ctx),
        job_id_(job_id),
        attempt_(attempt),
        fixed_attempt_(fixed_attempt),
        task_(task),
        tail_(tail) {}

  StreamChunk Next() override {
    auto job = ctx_.store->GetJob(job_id_);  // before reading: output precedes the end state
    if (!job.ok()) return {.data = "event: end\ndata: {}\n\n", .done = true};
    std::string out;
    if (!Drain(&out)) return {.data = std::move(out), .done = false};  // more to read
    bool ended = IsTerminal(job->state);
    if (!fixed_attempt_ && job->attempts > attempt_ && (ended || job->state != JobState::kQueued)) {
      FlushPartialLine(&out);  // the job restarted: go on with the new attempt's log
      attempt_ = job->attempts;
      offset_ = 0;
      return {.data = std::move(out), .done = false};
    }
    if (ended || (fixed_attempt_ && attempt_ < job->attempts)) {
      FlushPartialLine(&out);
      json end = {{"state", JobStateName(job->state)}, {"exit_code", OptInt(job->exit_code)}};
      absl::StrAppend(&out, "event: end\ndata: ", end.dump(), "\n\n");
      return {.data = std::move(out), .done = true};
    }
    return {.data = std::move(out), .done = false};
  }

 private:
  // Appends the complete new lines as events. True when it read up to the end of the file.
  bool Drain(std::string* out) {
    if (attempt_ == 0) return true;
    auto path = ctx_.controller->LogPath(job_id_, attempt_, task_);
    if (!path.ok() || path->empty()) return true;
    if (tail_ > 0) {  // only the first read starts at the tail
      offset_ = TailOffset(*path, tail_);
      tail_ = 0;
    }
    constexpr int64_t kMaxRead = 1 << 20;
    std::string fresh = ReadChunk(*path, offset_, kMaxRead);
    offset_ += static_cast<int64_t>(fresh.size());
    pending_ += fresh;
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      absl::StrAppend(out, "data: ", absl::string_view(pending_).substr(start, nl - start), "\n\n");
    }
    pending_.erase(0, start);
    return static_cast<int64_t>(fresh.size()) < kMaxRead;
  }

  void FlushPartialLine(std::string* out) {
    if (pending_.empty()) return;
    absl::StrAppend(out, "data: ", pending_, "\n\n");
    pending_.clear();
  }

  ApiContext ctx_;
  int64_t job_id_;
  int attempt_;
  bool fixed_attempt_;
  int task_;  // -1: the attempt's log
  int64_t tail_;
  int64_t offset_ = 0;
  std::string pending_;
};

HttpResponse Logs(const ApiContext& ctx, const HttpRequest& req, const Caller& caller) {
  auto id = JobIdParam(req);
  if (!id.ok()) return ErrorResponse(id.status());
  auto job = VisibleJob(ctx.store, caller, *id);
  if (!job.ok()) return ErrorResponse(job.status());
  auto attempt = IntQuery(req, "attempt", 0, 1, 1'000'000);
  auto tail = IntQuery(req, "tail", 0, 1, 10'000'000);
  auto task = IntQuery(req, "task", -1, 0, 100'000);
  if (!attempt.ok()) return ErrorResponse(attempt.status());
  if (!tail.ok()) return ErrorResponse(tail.status());
  if (!task.ok()) return ErrorResponse(task.status());
  auto path = ctx.controller->LogPath(*id, static_cast<int>(*attempt), static_cast<int>(*task));
  if (!path.ok()) return ErrorResponse(path.status());
  std::string follow = req.Query("follow").value_or("false");
  if (follow == "true" || follow == "1") {
    int start = *attempt > 0 ? static_cast<int>(*attempt) : job->attempts;
    HttpResponse r{.status = 200,
                   .content_type = "text/event-stream",
                   .headers = {{"Cache-Control", "no-cache"}},
                   .stream = std::make_shared<LogStream>(ctx, *id, start, *attempt > 0,
                                                         static_cast<int>(*task), *tail)};
    GzipStreamIfAccepted(req, &r);
    return r;
  }
  int64_t offset = !path->empty() && *tail > 0 ? TailOffset(*path, *tail) : 0;
  return HttpResponse{.status = 200,
                      .content_type = "text/plain; charset=utf-8",
                      .stream = std::make_shared<FileStream>(*path, offset),
                      .stream_poll = absl::ZeroDuration()};
}

HttpResponse PutSnapshot(const ApiContext& ctx, const HttpRequest& req, const Caller& caller) {
  auto info = ctx.snapshots->Put(req.body);
  if (!info.ok()) return ErrorResponse(info.status());
  auto mine = ctx.gate->identity()->SnapshotHasTenant(info->id, caller.tenant_id);
  if (!mine.ok()) return ErrorResponse(mine.status());
  if (auto s = ctx.gate->identity()->AddSnapshotTenant(info->id, caller.tenant_id); !s.ok()) {
    return ErrorResponse(s);
  }
  // "created" as this tenant sees it: whether another tenant has the same bytes stays hidden.
  return JsonResponse(*mine ? 200 : 201, {{"id", info->id}, {"size", info->size}});
}

HttpResponse GetSnapshot(const ApiContext& ctx, const HttpRequest& req, const Caller& caller) {
  const std::string& id = req.path_params.at("id");
  auto info = ctx.snapshots->Stat(id);
  if (!info.ok()) return ErrorResponse(info.status());
  auto mine = ctx.gate->identity()->SnapshotHasTenant(info->id, caller.tenant_id);
  if (!mine.ok()) return ErrorResponse(mine.status());
  if (!*mine && !caller.superadmin) {
    return ErrorResponse(absl::NotFoundError(absl::StrCat("snapshot ", id, " not found")));
  }
  return JsonResponse(200, {{"id", info->id}, {"size", info->size}});
}

}  // namespace

absl::StatusOr<JobRecord> VisibleJob(Store* store, const Caller& caller, int64_t job_id) {
  auto job = store->GetJob(job_id);
  if (!job.ok()) return job.status();
  if (!caller.Sees(job->tenant_id)) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  }
  return job;
}

void RegisterRoutes(const ApiContext& ctx, Router* router) {
  RouteOptions small{.max_body_bytes = ctx.max_request_bytes};
  AuthGate* gate = ctx.gate;
  router->Add("GET", "/healthz", [](const HttpRequest&) {
    return JsonResponse(200, {{"status", "ok"}});
  });
  router->Add("GET", "/metrics", [ctx](const HttpRequest&) {
    auto counts = ctx.store->CountByState();
    if (!counts.ok()) return ErrorResponse(counts.status());
    return HttpResponse{.status = 200,
                        .content_type = "text/plain; version=0.0.4",
                        .body = ctx.metrics->Render(*counts) +
                                (ctx.extra_metrics ? ctx.extra_metrics() : std::string())};
  });
  router->Add(
      "POST", "/api/v1/snapshots",
      gate->Wrap(Access::kMember, "snapshot.upload",
                 [ctx](const HttpRequest& r, const Caller& c) { return PutSnapshot(ctx, r, c); }),
      {.max_body_bytes = ctx.max_snapshot_bytes});
  router->Add(
      "GET", "/api/v1/snapshots/{id}",
      gate->Wrap(Access::kViewer, "snapshot.get",
                 [ctx](const HttpRequest& r, const Caller& c) { return GetSnapshot(ctx, r, c); }));
  router->Add(
      "POST", "/api/v1/jobs",
      gate->Wrap(Access::kMember, "job.submit",
                 [ctx](const HttpRequest& r, const Caller& c) { return Submit(ctx, r, c); }),
      small);
  router->Add("GET", "/api/v1/jobs",
              gate->Wrap(Access::kViewer, "job.list",
                         [ctx](const HttpRequest& r, const Caller& c) { return List(ctx, r, c); }));
  router->Add("GET", "/api/v1/queue",
              gate->Wrap(Access::kViewer, "queue.list",
                         [ctx](const HttpRequest&, const Caller& c) { return Queue(ctx, c); }));
  router->Add("GET", "/api/v1/jobs/{id}",
              gate->Wrap(Access::kViewer, "job.get", [ctx](const HttpRequest& r, const Caller& c) {
                auto id = JobIdParam(r);
                if (!id.ok()) return ErrorResponse(id.status());
                return JobResponse(ctx, 200, VisibleJob(ctx.store, c, *id));
              }));
  router->Add("POST", "/api/v1/jobs/{id}/cancel",
              gate->Wrap(Access::kMember, "job.cancel",
                         [ctx](const HttpRequest& r, const Caller& c) {
                           auto id = JobIdParam(r);
                           if (!id.ok()) return ErrorResponse(id.status());
                           if (auto job = VisibleJob(ctx.store, c, *id); !job.ok()) {
                             return ErrorResponse(job.status());
                           }
                           return JobResponse(ctx, 202, ctx.controller->Cancel(*id));
                         }),
              small);
  router->Add("GET", "/api/v1/jobs/{id}/logs",
              gate->Wrap(Access::kViewer, "job.logs",
                         [ctx](const HttpRequest& r, const Caller& c) { return Logs(ctx, r, c); }));
  router->Add(
      "GET", "/api/v1/jobs/{id}/events",
      gate->Wrap(Access::kViewer, "job.events",
                 [ctx](const HttpRequest& r, const Caller& c) { return Events(ctx, r, c); }));
}

}  // namespace dlab
