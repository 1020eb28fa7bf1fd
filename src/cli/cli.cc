#include "cli/cli.h"

#include <unistd.h>

#include <exception>
#include <functional>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/credentials.h"
#include "cli/prompter.h"
#include "cli/server_url.h"
#include "cli/tenancy_commands.h"
#include "cli/top.h"
#include "common/quantity.h"

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

// Accepts a positive duration like 2s, 500ms or 1m.
const CLI::Validator kPositiveDuration(
    [](std::string& value) -> std::string {
      absl::StatusOr<absl::Duration> d = ParseDuration(value);
      if (d.ok() && *d > absl::ZeroDuration()) return "";
      return absl::StrCat("must be a positive duration like 2s or 500ms, got '", value, "'");
    },
    "");

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

// A subcommand with --json and nothing else.
void AddFormatCommand(CLI::App* parent, const std::string& name, const std::string& description,
                      const std::string& json_what, FormatOptions* options,
                      absl::Status (*command)(const CommandContext&, const FormatOptions&),
                      Action* action) {
  CLI::App* sub = parent->add_subcommand(name, description);
  AddJsonFlag(sub, &options->format, json_what);
  OnChosen(sub, action, command, options);
}

// --password-stdin and --password-file, which exclude each other.
void AddPasswordSource(CLI::App* command, PasswordSource* source, const std::string& whose) {
  CLI::Option* from_stdin = command->add_flag(
      "--password-stdin", source->from_stdin,
      absl::StrCat("read ", whose, " password from the first line of standard input"));
  command
      ->add_option("--password-file", source->file,
                   absl::StrCat("read ", whose, " password from the first line of FILE"))
      ->type_name("FILE")
      ->check(CLI::ExistingFile.description(""))
      ->excludes(from_stdin);
}

// How a command uses the configured access key.
enum class KeyUse {
  kSigns,    // signs its requests with it; a 401 earns the hint to log in
  kManages,  // login and logout: create or revoke the key themselves
};

constexpr char kLoginHint[] =
    " (run `dlab login`, or set DLAB_ACCESS_KEY_ID and DLAB_SECRET_ACCESS_KEY)";

int ReportFailure(const absl::Status& status, KeyUse key_use = KeyUse::kManages) {
  std::cerr << "dlab: " << status.message();
  if (key_use == KeyUse::kSigns && absl::IsUnauthenticated(status)) std::cerr << kLoginHint;
  std::cerr << std::endl;
  return kFailureExitStatus;
}

// The tenant to act in and, for commands that sign with the configured key, that key.
absl::StatusOr<HttpClientOptions> ResolveClientOptions(const IdentitySources& identity,
                                                       const ConfigFile& config, KeyUse key_use) {
  HttpClientOptions options;
  auto tenant = ResolveTenant(identity, config);
  if (!tenant.ok()) return tenant.status();
  options.tenant = *tenant;
  if (key_use == KeyUse::kSigns) {
    auto credentials = ResolveCredentials(identity, config);
    if (!credentials.ok()) return credentials.status();
    options.credentials = *credentials;
  }
  return options;
}

// What is known once the arguments are parsed and the environment is read, before the action
// runs.
struct Resolved {
  std::optional<std::string> tenant_flag;  // --tenant
  std::string config_path;                 // empty when neither HOME nor XDG_CONFIG_HOME is set
  IdentitySources identity;
};

// The options of the identity subcommands, as parsing fills them in.
struct IdentityArgs {
  LoginOptions login;
  LogoutOptions logout;
  FormatOptions whoami;
  KeyCreateOptions key_create;
  KeyListOptions key_list;
  NameOptions key_revoke;
  UserCreateOptions user_create;
  FormatOptions user_list;
};

// login, logout, whoami, keys, users and passwd.
void AddIdentityCommands(CLI::App* app, IdentityArgs* args, const Resolved* resolved,
                         Action* action, KeyUse* key_use) {
  CLI::App* login_cmd = app->add_subcommand(
      "login",
      "Sign in with your user name and password, create an access key, and save it (with the\n"
      "server URL, and --tenant when given) in the config file, readable only by you. Later\n"
      "commands sign their requests with it.");
  login_cmd->add_option("--user", args->login.user, "your user name (default: asked for)")
      ->type_name("NAME");
  AddPasswordSource(login_cmd, &args->login.password, "your");
  login_cmd
      ->add_option("--name", args->login.key_name, "a name for the new key (default: cli@HOST)")
      ->type_name("KEYNAME");
  login_cmd->callback([=] {
    *key_use = KeyUse::kManages;
    *action = [=](const CommandContext& ctx) {
      args->login.config_path = resolved->config_path;
      args->login.tenant = resolved->tenant_flag;
      args->login.environment_has_key = IsSet(resolved->identity.env_key_id);
      return ExitStatusOf(Login(ctx, args->login));
    };
  });

  CLI::App* logout_cmd = app->add_subcommand(
      "logout", "Revoke the access key saved in the config file and remove it from there.");
  logout_cmd->callback([=] {
    *key_use = KeyUse::kManages;
    *action = [=](const CommandContext& ctx) {
      args->logout.config_path = resolved->config_path;
      return ExitStatusOf(Logout(ctx, args->logout));
    };
  });

  AddFormatCommand(app, "whoami",
                   "Show who you are: your user, the access key in use, the tenant you act in\n"
                   "with your role there, and all your tenants.",
                   "the server's answer", &args->whoami, Whoami, action);

  CLI::App* keys_cmd = app->add_subcommand("keys", "Manage access keys.");
  keys_cmd->require_subcommand(1);
  CLI::App* key_create_cmd = keys_cmd->add_subcommand(
      "create", "Create an access key for yourself; prints its id and its secret, only once.");
  key_create_cmd->add_option("--name", args->key_create.name, "the key's name (default: cli@HOST)")
      ->type_name("NAME");
  AddJsonFlag(key_create_cmd, &args->key_create.format, "the new key");
  OnChosen(key_create_cmd, action, CreateKey, &args->key_create);
  CLI::App* key_list_cmd = keys_cmd->add_subcommand("ls", "List your access keys.");
  key_list_cmd->add_option("--user", args->key_list.user, "another user's keys (for admins)")
      ->type_name("USER");
  AddJsonFlag(key_list_cmd, &args->key_list.format, "{\"keys\": [...]}");
  OnChosen(key_list_cmd, action, ListKeys, &args->key_list);
  CLI::App* key_revoke_cmd =
      keys_cmd->add_subcommand("revoke", "Revoke an access key: it signs nothing any more.");
  key_revoke_cmd->add_option("ID", args->key_revoke.name, "the key id (AK...)")->required();
  AddJsonFlag(key_revoke_cmd, &args->key_revoke.format, "the revoked key");
  OnChosen(key_revoke_cmd, action, RevokeKey, &args->key_revoke);

  CLI::App* users_cmd = app->add_subcommand("users", "Manage users (superadmins).");
  users_cmd->require_subcommand(1);
  CLI::App* user_create_cmd = users_cmd->add_subcommand(
      "create", "Create a user; the password is asked for (twice) unless given otherwise.");
  user_create_cmd->add_option("NAME", args->user_create.name, "the user's name")->required();
  user_create_cmd->add_flag("--superadmin", args->user_create.superadmin,
                            "the user manages tenants, users and quotas");
  AddPasswordSource(user_create_cmd, &args->user_create.password, "the user's");
  AddJsonFlag(user_create_cmd, &args->user_create.format, "the new user");
  OnChosen(user_create_cmd, action, CreateUser, &args->user_create);
  AddFormatCommand(users_cmd, "ls", "List the users.", "{\"users\": [...]}", &args->user_list,
                   ListUsers, action);

  CLI::App* passwd_cmd = app->add_subcommand(
      "passwd", "Change your password: asks for the current one and the new one (twice).");
  passwd_cmd->callback([=] {
    *action = [](const CommandContext& ctx) { return ExitStatusOf(ChangePassword(ctx)); };
  });
}

// The options of the tenancy subcommands, as parsing fills them in.
struct TenancyArgs {
  NameOptions tenant_create;
  FormatOptions tenant_list;
  FormatOptions member_list;
  MemberOptions member_set;
  MemberOptions member_remove;
  FormatOptions quota_show;
  QuotaChanges quota_set;
  AuditOptions audit;
};

// tenants, members, quota and audit.
void AddTenancyCommands(CLI::App* app, TenancyArgs* args, Action* action) {
  CLI::App* tenants_cmd = app->add_subcommand("tenants", "Manage tenants (superadmins).");
  tenants_cmd->require_subcommand(1);
  CLI::App* tenant_create_cmd = tenants_cmd->add_subcommand("create", "Create a tenant.");
  tenant_create_cmd->add_option("NAME", args->tenant_create.name, "the tenant's name")->required();
  AddJsonFlag(tenant_create_cmd, &args->tenant_create.format, "the new tenant");
  OnChosen(tenant_create_cmd, action, CreateTenant, &args->tenant_create);
  AddFormatCommand(tenants_cmd, "ls", "List the tenants you can see.", "{\"tenants\": [...]}",
                   &args->tenant_list, ListTenants, action);

  CLI::App* members_cmd = app->add_subcommand(
      "members",
      "Manage the members of a tenant: the one named with --tenant, else the one you act in.");
  members_cmd->require_subcommand(1);
  AddFormatCommand(members_cmd, "ls", "List the tenant's members and their roles.",
                   "{\"members\": [...]}", &args->member_list, ListMembers, action);
  CLI::App* member_set_cmd = members_cmd->add_subcommand(
      "set",
      "Make USER a member of the tenant with ROLE, or change their role: viewer (reads),\n"
      "member (also runs and cancels jobs), admin (also manages members and keys).");
  member_set_cmd->add_option("USER", args->member_set.user, "the user's name")->required();
  member_set_cmd->add_option("ROLE", args->member_set.role, "admin, member or viewer")
      ->required()
      ->check(CLI::IsMember({"admin", "member", "viewer"}));
  AddJsonFlag(member_set_cmd, &args->member_set.format, "the membership");
  OnChosen(member_set_cmd, action, SetMember, &args->member_set);
  CLI::App* member_remove_cmd = members_cmd->add_subcommand("rm", "Remove USER from the tenant.");
  member_remove_cmd->add_option("USER", args->member_remove.user, "the user's name")->required();
  OnChosen(member_remove_cmd, action, RemoveMember, &args->member_remove);

  CLI::App* quota_cmd = app->add_subcommand(
      "quota",
      "Show the quota of a tenant (the one named with --tenant, else the one you act in): per\n"
      "resource what its jobs use and the limit.");
  AddJsonFlag(quota_cmd, &args->quota_show.format, "the server's answer");
  CLI::App* quota_set_cmd = quota_cmd->add_subcommand(
      "set",
      "Change some limits of the tenant's quota, keeping the others (superadmins). `none`\n"
      "removes a limit.");
  quota_set_cmd->add_option("--gpus", args->quota_set.gpus, "GPUs of all types together")
      ->type_name("N|none");
  quota_set_cmd
      ->add_option("--gpu-type", args->quota_set.gpu_types,
                   "GPUs of one type, e.g. H100=2; repeatable")
      ->type_name("TYPE=N|none");
  quota_set_cmd->add_option("--cpus", args->quota_set.cpus, "CPUs, e.g. 16 or 500m")
      ->type_name("C|none");
  quota_set_cmd->add_option("--memory", args->quota_set.memory, "memory, e.g. 64Gi")
      ->type_name("M|none");
  quota_set_cmd
      ->add_option("--running-jobs", args->quota_set.running_jobs, "jobs holding resources at once")
      ->type_name("N|none");
  quota_set_cmd->add_option("--queued-jobs", args->quota_set.queued_jobs, "jobs waiting at once")
      ->type_name("N|none");
  AddJsonFlag(quota_set_cmd, &args->quota_set.format, "the new quota");
  OnChosen(quota_set_cmd, action, SetQuota, &args->quota_set);
  quota_cmd->callback([=] {
    if (quota_set_cmd->parsed()) return;
    *action = [=](const CommandContext& ctx) {
      return ExitStatusOf(ShowQuota(ctx, args->quota_show));
    };
  });

  CLI::App* audit_cmd = app->add_subcommand(
      "audit",
      "Show the audit trail: who did what to which object, when, from where, and with what\n"
      "outcome (every change, and every refused request).");
  audit_cmd->add_option("--limit", args->audit.limit, "show at most N records")
      ->type_name("N")
      ->check(kPositiveInteger)
      ->capture_default_str();
  audit_cmd->add_option("--tenant", args->audit.tenant, "only the records of tenant NAME")
      ->type_name("NAME");
  AddJsonFlag(audit_cmd, &args->audit.format, "{\"records\": [...]}");
  OnChosen(audit_cmd, action, ShowAudit, &args->audit);
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{
      "dlab: submit and watch jobs on a dlab server (dlabd).\n"
      "The server is --url, else $DLAB_URL, else `url:` in $XDG_CONFIG_HOME/dlab/config\n"
      "(default ~/.config/dlab/config), else http://127.0.0.1:8080. Requests are signed with\n"
      "the access key in $DLAB_ACCESS_KEY_ID and $DLAB_SECRET_ACCESS_KEY, else the one\n"
      "`dlab login` saved in the config file.",
      "dlab"};
  app.set_version_flag("--version", absl::StrCat("dlab ", kDlabVersion));
  app.require_subcommand(1);
  app.fallthrough();
  std::optional<std::string> url;
  app.add_option("--url", url, "dlabd's base URL, e.g. http://gpu-box:8080")->type_name("URL");
  Resolved resolved;
  app.add_option("--tenant", resolved.tenant_flag,
                 "the tenant to act in (default: $DLAB_TENANT, else `tenant:` in the config\n"
                 "file, else your first tenant)")
      ->type_name("NAME");

  // The chosen subcommand stores what to do here; it runs once the URL is known.
  Action action;
  KeyUse key_use = KeyUse::kSigns;

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

  FormatOptions queue;
  AddFormatCommand(
      &app, "queue",
      "Show the queued jobs of the tenant in scheduling order: each one's position in\n"
      "the whole queue (all tenants' jobs), how long it has waited, when it may start,\n"
      "and why it waits.",
      "{\"jobs\": [...]}", &queue, ShowQueue, &action);

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

  TopOptions top;
  std::string top_interval = "2s";
  CLI::App* top_cmd = app.add_subcommand(
      "top",
      "Show the node's GPUs and the jobs on them, redrawn every --interval until Ctrl-C: the\n"
      "host's CPU, memory and disk, then per GPU its model, utilisation, memory used and\n"
      "total, temperature, power, and the running job that holds it (id, name, owner).\n"
      "Readings that are not available (fake GPUs from the config, or what the GPU or driver\n"
      "does not report) show as n/a.");
  top_cmd->add_option("--interval", top_interval, "time between frames, e.g. 2s or 500ms")
      ->type_name("DURATION")
      ->check(kPositiveDuration)
      ->capture_default_str();
  top_cmd->add_flag("--once", top.once,
                    "print one frame, without terminal codes, and exit (for scripts)");
  top_cmd->callback([&] {
    top.interval = ParseDuration(top_interval).value_or(absl::Seconds(2));  // checked above
    top.clear_screen = ::isatty(STDOUT_FILENO) == 1;
    action = [&](const CommandContext& ctx) { return ExitStatusOf(ShowTop(ctx, top)); };
  });

  IdentityArgs identity;
  AddIdentityCommands(&app, &identity, &resolved, &action, &key_use);
  TenancyArgs tenancy;
  AddTenancyCommands(&app, &tenancy, &action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kUsageExitStatus;
  }
  if (!action) return kUsageExitStatus;  // require_subcommand makes this unreachable

  UrlSources url_sources = UrlSourcesFromEnvironment(url);
  auto server_url = ResolveServerUrl(url_sources);
  if (!server_url.ok()) return ReportFailure(server_url.status());
  resolved.config_path = ConfigFilePath(url_sources).value_or("");
  absl::StatusOr<ConfigFile> config = ConfigFile{};
  if (!resolved.config_path.empty()) config = ReadConfigFile(resolved.config_path);
  if (!config.ok()) return ReportFailure(config.status());
  resolved.identity = IdentitySourcesFromEnvironment(resolved.tenant_flag);
  auto client_options = ResolveClientOptions(resolved.identity, *config, key_use);
  if (!client_options.ok()) return ReportFailure(client_options.status());
  HttpClient client(*server_url, *client_options);
  std::unique_ptr<Prompter> prompter = NewTerminalPrompter();
  CommandContext ctx{.client = &client, .out = &std::cout, .prompter = prompter.get()};
  try {
    absl::StatusOr<int> exit_status = action(ctx);
    std::cout.flush();
    if (!exit_status.ok()) return ReportFailure(exit_status.status(), key_use);
    return *exit_status;
  } catch (const std::exception& e) {
    // nlohmann::json throws when a reply has a field of an unexpected type.
    return ReportFailure(
        absl::InternalError(absl::StrCat("unexpected reply from dlabd: ", e.what())));
  }
}

}  // namespace dlab
