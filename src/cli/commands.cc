#include "cli/commands.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/command_support.h"
#include "cli/job_format.h"
#include "cli/progress_bar.h"
#include "cli/snapshot_packer.h"
#include "cli/sse_parser.h"
#include "common/yaml_json.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kMaxPageSize = 500;

std::string JobPath(int64_t job_id, absl::string_view suffix = "") {
  return absl::StrCat("/api/v1/jobs/", job_id, suffix);
}

// A file in the temporary directory, removed when this goes out of scope.
class TempFile final {
 public:
  static absl::StatusOr<TempFile> Create(absl::string_view stem, absl::string_view suffix) {
    std::error_code ec;
    fs::path dir = fs::temp_directory_path(ec);
    if (ec) dir = "/tmp";
    std::string name = absl::StrCat(dir.string(), "/", stem, "-XXXXXX", suffix);
    int fd = ::mkstemps(name.data(), static_cast<int>(suffix.size()));
    if (fd < 0) {
      return absl::InternalError(absl::StrCat("cannot create a temporary file in ", dir.string(),
                                              ": ", std::strerror(errno)));
    }
    ::close(fd);
    return TempFile(name);
  }
  TempFile(TempFile&& other) noexcept : path_(std::exchange(other.path_, fs::path())) {}
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile() {
    std::error_code ec;
    if (!path_.empty()) fs::remove(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  explicit TempFile(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Packs `dir`, and uploads the archive unless dlabd already has it; returns the snapshot id.
absl::StatusOr<std::string> UploadCode(const CommandContext& ctx, const fs::path& dir) {
  auto folder = ScanCodeFolder(dir);
  if (!folder.ok()) return folder.status();
  bool show_progress = ProgressBar::ShouldShow(folder->content_bytes);
  auto archive = TempFile::Create("dlab-snapshot", ".tar.gz");
  if (!archive.ok()) return archive.status();

  absl::StatusOr<PackedSnapshot> packed;
  {
    std::optional<ProgressBar> bar;
    PackOptions options;
    if (show_progress) {
      bar.emplace("packing");
      options.on_progress = [&bar](int64_t done, int64_t total) { bar->Update(done, total); };
    }
    packed = PackSnapshot(*folder, archive->path(), options);
    if (bar && packed.ok()) bar->Finish();
  }
  if (!packed.ok()) return packed.status();

  auto head = ctx.client->Send(
      HttpRequest{.method = "HEAD", .path = absl::StrCat("/api/v1/snapshots/", packed->id)});
  if (head.ok()) return packed->id;
  if (!absl::IsNotFound(head.status())) return head.status();

  absl::StatusOr<HttpResponse> uploaded;
  {
    std::optional<ProgressBar> bar;
    HttpRequest request{.method = "POST",
                        .path = "/api/v1/snapshots",
                        .content_type = "application/gzip",
                        .body_file = archive->path()};
    if (show_progress) {
      bar.emplace("uploading");
      request.on_upload_progress = [&bar](int64_t sent, int64_t total) {
        bar->Update(sent, total);
      };
    }
    uploaded = ctx.client->Send(request);
    if (bar && uploaded.ok()) bar->Finish();
  }
  if (!uploaded.ok()) return uploaded.status();
  json reply = json::parse(uploaded->body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_object() && reply.contains("id") && reply["id"].is_string()) {
    return reply["id"].get<std::string>();
  }
  return packed->id;
}

HttpRequest LogsRequest(const LogsOptions& options) {
  HttpRequest request{.path = JobPath(options.job_id, "/logs")};
  if (options.follow) request.query.emplace_back("follow", "true");
  if (options.tail) request.query.emplace_back("tail", absl::StrCat(*options.tail));
  if (options.attempt) request.query.emplace_back("attempt", absl::StrCat(*options.attempt));
  if (options.task) request.query.emplace_back("task", absl::StrCat(*options.task));
  return request;
}

// How a followed log stream ended, when the server said so.
struct LogEnd {
  std::string state;
  json exit_code;
};

// Prints the log of a job as it is written until the stream ends. Returns the end event, or
// nullopt when the stream closed without one.
absl::StatusOr<std::optional<LogEnd>> FollowLog(const CommandContext& ctx,
                                                const LogsOptions& options) {
  SseParser parser;
  std::optional<LogEnd> end;
  auto on_chunk = [&](std::string_view chunk) {
    for (SseEvent& event : parser.Feed(chunk)) {
      if (event.event == "end") {
        json data = json::parse(event.data, nullptr, /*allow_exceptions=*/false);
        LogEnd log_end;
        if (data.is_object()) {
          if (data.contains("state") && data["state"].is_string()) log_end.state = data["state"];
          if (data.contains("exit_code")) log_end.exit_code = data["exit_code"];
        }
        end = std::move(log_end);
        break;
      }
      if (event.event == "message") *ctx.out << event.data << "\n";
    }
    ctx.out->flush();
    return !end.has_value();
  };
  HttpRequest request = LogsRequest(options);
  request.on_chunk = on_chunk;
  auto response = ctx.client->Send(request);
  if (!response.ok()) return response.status();
  return end;
}

absl::StatusOr<int> ExitStatusAfterFollow(const CommandContext& ctx, int64_t job_id,
                                          const std::optional<LogEnd>& end) {
  auto job = ctx.client->GetJson(JobPath(job_id));
  if (!job.ok()) {
    if (end) return ExitStatusForJob(end->state, end->exit_code);
    return job.status();
  }
  std::string state = job->value("state", "");
  if (state != "SUCCEEDED" && state != "FAILED" && state != "CANCELLED") {
    return absl::UnavailableError(
        absl::StrCat("the log stream of job ", job_id, " ended while the job was ", state));
  }
  if (state != "SUCCEEDED") {  // the log alone may not say why (e.g. the command was not found)
    std::cerr << "dlab: job " << job_id << " " << state << ": " << job->value("reason", "") << "\n";
  }
  return ExitStatusForJob(state, job->value("exit_code", json()));
}

}  // namespace

absl::StatusOr<int> RunJob(const CommandContext& ctx, const RunOptions& options) {
  auto text = ReadFile(options.spec_file);
  if (!text.ok()) return text.status();
  auto spec = ParseYamlOrJson(*text);
  if (!spec.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.spec_file, ": ", spec.status().message()));
  }
  if (!spec->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.spec_file, ": a job spec must be a mapping of fields"));
  }
  json body = {{"spec", *spec}};
  if (options.upload_code) {
    fs::path dir =
        options.code_dir ? fs::path(*options.code_dir) : fs::path(options.spec_file).parent_path();
    if (dir.empty()) dir = ".";
    auto snapshot = UploadCode(ctx, dir);
    if (!snapshot.ok()) return snapshot.status();
    body["snapshot"] = *snapshot;
  }
  auto job = ctx.client->PostJson("/api/v1/jobs", body);
  if (!job.ok()) return job.status();
  if (options.format == OutputFormat::kJson) {
    PrintJson(*ctx.out, *job);
  } else {
    *ctx.out << job->value("id", json()).dump() << "\n";
  }
  ctx.out->flush();
  if (!options.follow) return 0;
  if (!job->contains("id") || !(*job)["id"].is_number_integer()) {
    return absl::InternalError("dlabd answered the submit without a job id");
  }
  int64_t job_id = (*job)["id"].get<int64_t>();
  auto end = FollowLog(ctx, LogsOptions{.job_id = job_id, .follow = true});
  if (!end.ok()) return end.status();
  return ExitStatusAfterFollow(ctx, job_id, *end);
}

absl::Status ListJobs(const CommandContext& ctx, const ListOptions& options) {
  NameValues filters;
  for (const std::string& states : options.states) {
    for (absl::string_view state : absl::StrSplit(states, ',', absl::SkipEmpty())) {
      filters.emplace_back("state", absl::AsciiStrToUpper(state));
    }
  }
  for (const std::string& label : options.labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (kv.first.empty() || label.find('=') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--label ", label, ": expected key=value, e.g. --label project=mnist"));
    }
    filters.emplace_back("label", label);
  }

  auto jobs = ListPaged(ctx, "/api/v1/jobs", "jobs", filters, options.limit, kMaxPageSize);
  if (!jobs.ok()) return jobs.status();
  return PrintReply(ctx, options.format, json{{"jobs", *jobs}},
                    [](const json& reply) { return FormatJobTable(reply["jobs"], absl::Now()); });
}

absl::Status ShowQueue(const CommandContext& ctx, const FormatOptions& options) {
  return PrintReply(ctx, options.format, ctx.client->GetJson("/api/v1/queue"),
                    [](const json& reply) {
                      const json& jobs = reply.value("jobs", json::array());
                      if (jobs.empty()) return std::string("no queued jobs\n");
                      return FormatQueueTable(jobs, absl::Now());
                    });
}

absl::Status DescribeJob(const CommandContext& ctx, const JobOptions& options) {
  return PrintReply(ctx, options.format, ctx.client->GetJson(JobPath(options.job_id)),
                    [](const json& job) { return FormatJobDescription(job, absl::Now()); });
}

absl::Status CancelJob(const CommandContext& ctx, const JobOptions& options) {
  return PrintReply(ctx, options.format,
                    ctx.client->PostJson(JobPath(options.job_id, "/cancel"), json::object()),
                    [&](const json& job) {
                      return absl::StrCat("job ", options.job_id, ": cancel requested (",
                                          job.value("state", "?"), ")\n");
                    });
}

absl::Status ShowEvents(const CommandContext& ctx, const JobOptions& options) {
  return PrintReply(
      ctx, options.format, ctx.client->GetJson(JobPath(options.job_id, "/events")),
      [](const json& reply) { return FormatEventTable(reply.value("events", json::array())); });
}

absl::Status ShowLogs(const CommandContext& ctx, const LogsOptions& options) {
  if (options.follow) return FollowLog(ctx, options).status();
  auto response = ctx.client->Send(LogsRequest(options));
  if (!response.ok()) return response.status();
  *ctx.out << response->body;
  return absl::OkStatus();
}

absl::Status ShowMetrics(const CommandContext& ctx, const MetricsOptions& options) {
  // The table draws at most kMetricTrendWidth points; JSON gets what the server sends by default.
  NameValues query;
  if (options.format == OutputFormat::kText) {
    query.emplace_back("max_points", absl::StrCat(kMetricTrendWidth));
  }
  for (const std::string& name : options.names) query.emplace_back("name", name);
  return PrintReply(ctx, options.format,
                    ctx.client->GetJson(JobPath(options.job_id, "/metrics"), std::move(query)),
                    [&](const json& reply) {
                      const json& series = reply.value("series", json::array());
                      if (!series.empty()) return FormatMetricTable(series);
                      if (options.names.empty())
                        return absl::StrCat("job ", options.job_id, " has no metrics\n");
                      return absl::StrCat("job ", options.job_id, " has no metric named ",
                                          absl::StrJoin(options.names, " or "), "\n");
                    });
}

absl::Status ShowCheckpoints(const CommandContext& ctx, const JobOptions& options) {
  return PrintReply(ctx, options.format,
                    ctx.client->GetJson(JobPath(options.job_id, "/checkpoints")),
                    [&](const json& reply) {
                      const json& checkpoints = reply.value("checkpoints", json::array());
                      if (checkpoints.empty()) {
                        return absl::StrCat("job ", options.job_id, " has no checkpoints\n");
                      }
                      return FormatCheckpointTable(checkpoints);
                    });
}

}  // namespace dlab
