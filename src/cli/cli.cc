#include "cli/cli.h"

#include <exception>
#include <functional>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/server_url.h"

namespace dlab {
namespace {

constexpr int kFailureExitStatus = 1;
constexpr int kUsageExitStatus = 2;

void AddJsonFlag(CLI::App* command, OutputFormat* format, const std::string& what) {
  command->add_flag_callback(
      "--json", [format] { *format = OutputFormat::kJson; },
      absl::StrCat("print ", what, " as JSON instead of text"));
}

// Accepts a whole number of at most 18 digits that is at least `min` (0 or 1).
CLI::Validator WholeNumberAtLeast(int min) {
  return CLI::Validator(
      [min](std::string& value) -> std::string {
        bool digits = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
        bool zero = value.find_first_not_of('0') == std::string::npos;
        if (digits && value.size() < 19 && !(zero && min > 0)) return "";
        return absl::StrCat("must be ", min > 0 ? "a positive integer" : "0 or a positive integer",
                            ", got '", value, "'");
      },
      "");
}

const CLI::Validator kPositiveInteger = WholeNumberAtLeast(1);  // ids and counts
const CLI::Validator kRank = WholeNumberAtLeast(0);             // a task's rank

void AddJobId(CLI::App* command, int64_t* job_id) {
  command->add_option("ID", *job_id, "the job id (from `dlab run` or `dlab ls`)")
      ->required()
      ->check(kPositiveInteger);
}

// What the chosen subcommand will do once the server URL is known.
using Action = std::function<absl::StatusOr<int>(const CommandContext&)>;

absl::StatusOr<int> ExitStatusOf(const absl::Status& status) {
  if (!status.ok()) return status;
  return 0;
}

// Makes choosing `command` run `run` over the options its arguments filled in.
template <typename Options>
void OnChosen(CLI::App* command, Action* action,
              absl::Status (*run)(const CommandContext&, const Options&), const Options* options) {
  command->callback([=] {
    *action = [=](const CommandContext& ctx) { return ExitStatusOf(run(ctx, *options)); };
  });
}

// A subcommand over one job: an ID argument and --json.
void AddJobCommand(CLI::App* app, const std::string& name, const std::string& description,
                   const std::string& json_what, JobOptions* options,
                   absl::Status (*command)(const CommandContext&, const JobOptions&),
                   Action* action) {
  CLI::App* sub = app->add_subcommand(name, description);
  AddJobId(sub, &options->job_id);
  AddJsonFlag(sub, &options->format, json_what);
  OnChosen(sub, action, command, options);
}

int ReportFailure(const absl::Status& status) {
  std::cerr << "dlab: " << status.message() << std::endl;
  return kFailureExitStatus;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{
      "dlab: submit and watch jobs on a dlab server (dlabd).\n"
      "The server is --url, else $DLAB_URL, else `url:` in $XDG_CONFIG_HOME/dlab/config\n"
      "(default ~/.config/dlab/config), else http://127.0.0.1:8080.",
      "dlab"};
  app.set_version_flag("--version", absl::StrCat("dlab ", kDlabVersion));
  app.require_subcommand(1);
  app.fallthrough();
  std::optional<std::string> url;
  app.add_option("--url", url, "dlabd's base URL, e.g. http://gpu-box:8080")->type_name("URL");

  // The chosen subcommand stores what to do here; it runs once the URL is known.
  Action action;

  RunOptions run;
  CLI::App* run_cmd = app.add_subcommand(
      "run",
      "Submit a job from a spec file (YAML or JSON). The code folder is packed (honouring\n"
      ".dlabignore), uploaded unless the server has it already, and the job runs on it.\n"
      "Prints the job id.");
  run_cmd->add_option("FILE", run.spec_file, "the job spec, YAML or JSON")
      ->required()
      ->type_name("FILE")
      ->check(CLI::ExistingFile.description(""));
  auto* code_opt = run_cmd->add_option(
      "--code", run.code_dir, "the code folder to upload (default: the folder holding FILE)");
  code_opt->type_name("DIR")->check(CLI::ExistingDirectory.description(""));
  run_cmd
      ->add_flag_callback(
          "--no-code", [&run] { run.upload_code = false; }, "submit without uploading any code")
      ->excludes(code_opt);
  run_cmd->add_flag("-f,--follow", run.follow,
                    "stream the job's log until it ends and exit with its status\n"
                    "(0 succeeded, its exit code when failed, 130 cancelled)");
  AddJsonFlag(run_cmd, &run.format, "the submitted job");
  run_cmd->callback([&] { action = [&](const CommandContext& ctx) { return RunJob(ctx, run); }; });

  ListOptions list;
  CLI::App* ls_cmd = app.add_subcommand("ls", "List jobs, newest first.");
  ls_cmd
      ->add_option("--state", list.states,
                   "only jobs in this state (QUEUED, RUNNING, SUCCEEDED, ...); repeatable")
      ->type_name("STATE");
  ls_cmd
      ->add_option("--label", list.labels, "only jobs with this label; repeatable, all must match")
      ->type_name("KEY=VALUE");
  ls_cmd->add_option("--limit", list.limit, "show at most N jobs")
      ->type_name("N")
      ->check(kPositiveInteger)
      ->capture_default_str();
  AddJsonFlag(ls_cmd, &list.format, "{\"jobs\": [...]}");
  OnChosen(ls_cmd, &action, ListJobs, &list);

  JobOptions describe;
  AddJobCommand(&app, "describe",
                "Show one job: state and why, times, command, resources, tasks, and each attempt:\n"
                "why it failed (user or infrastructure, and whether that counted against\n"
                "max_restarts), the checkpoint it resumed from, its limits, and its tasks.",
                "the job object", &describe, DescribeJob, &action);

  LogsOptions logs;
  CLI::App* logs_cmd = app.add_subcommand(
      "logs",
      "Print a job's log (stdout and stderr). For a job with several tasks, the logs of all\n"
      "tasks merged, each line prefixed with [rank N]; --task picks one task's log.");
  AddJobId(logs_cmd, &logs.job_id);
  logs_cmd->add_flag("-f,--follow", logs.follow, "keep printing new lines until the job ends");
  logs_cmd->add_option("--tail", logs.tail, "only the last N lines")
      ->type_name("N")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  logs_cmd->add_option("--attempt", logs.attempt, "the log of attempt N (default: the latest)")
      ->type_name("N")
      ->check(kPositiveInteger);
  logs_cmd
      ->add_option("--task", logs.task,
                   "only the log of the task of rank N (0 is the first; see `dlab describe`)")
      ->type_name("N")
      ->check(kRank);
  OnChosen(logs_cmd, &action, ShowLogs, &logs);

  MetricsOptions metrics;
  CLI::App* metrics_cmd = app.add_subcommand(
      "metrics",
      "Show the training metrics a job reported: per metric its latest step and value, how\n"
      "many points it has, and a sparkline of the whole series (oldest step on the left).");
  AddJobId(metrics_cmd, &metrics.job_id);
  metrics_cmd->add_option("--name", metrics.names, "only the metric NAME; repeatable")
      ->type_name("NAME")
      ->allow_extra_args(false);  // `--name loss 7`: 7 is the job id
  AddJsonFlag(metrics_cmd, &metrics.format,
              "{\"series\": [...]}, with the server's default max_points,");
  OnChosen(metrics_cmd, &action, ShowMetrics, &metrics);

  JobOptions checkpoints;
  AddJobCommand(&app, "checkpoints",
                "List a job's checkpoints, oldest first: the attempt and step that saved each,\n"
                "where it is, and the metrics at that step.",
                "{\"checkpoints\": [...]}", &checkpoints, ShowCheckpoints, &action);

  JobOptions cancel;
  AddJobCommand(&app, "cancel",
                "Cancel a job: a queued job ends at once, a running one is stopped.",
                "the job object", &cancel, CancelJob, &action);

  JobOptions events;
  AddJobCommand(&app, "events", "Show a job's state transitions, oldest first.",
                "{\"events\": [...]}", &events, ShowEvents, &action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kUsageExitStatus;
  }
  if (!action) return kUsageExitStatus;  // require_subcommand makes this unreachable

  auto server_url = ResolveServerUrl(UrlSourcesFromEnvironment(url));
  if (!server_url.ok()) return ReportFailure(server_url.status());
  HttpClient client(*server_url);
  CommandContext ctx{.client = &client, .out = &std::cout};
  try {
    absl::StatusOr<int> exit_status = action(ctx);
    std::cout.flush();
    if (!exit_status.ok()) return ReportFailure(exit_status.status());
    return *exit_status;
  } catch (const std::exception& e) {
    // nlohmann::json throws when a reply has a field of an unexpected type.
    return ReportFailure(
        absl::InternalError(absl::StrCat("unexpected reply from dlabd: ", e.what())));
  }
}

}  // namespace dlab
