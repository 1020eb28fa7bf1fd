#include "backend/slurm/slurm_commands.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "backend/local/slurm_steps.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

// "KEY=VALUE KEY=VALUE ..." (values have no spaces in --oneliner output, except a few fields
// such as Reason=, which come last and are not read here).
std::map<std::string, std::string> Fields(absl::string_view line) {
  std::map<std::string, std::string> out;
  for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    size_t eq = word.find('=');
    if (eq == absl::string_view::npos) continue;
    out.emplace(std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)));
  }
  return out;
}

// Gres=gpu:a100:4(S:0),gpu:v100:2 -> 6 GPUs; the type when there is one.
void ParseGres(absl::string_view gres, SlurmNode& node) {
  std::vector<std::string> types;
  for (absl::string_view item : absl::StrSplit(gres, ',', absl::SkipEmpty())) {
    item = item.substr(0, item.find('('));
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    if (parts.empty() || parts[0] != "gpu") continue;
    int count = 0;
    if (parts.size() == 2 && absl::SimpleAtoi(parts[1], &count)) {
      types.push_back("");
    } else if (parts.size() >= 3 && absl::SimpleAtoi(parts[2], &count)) {
      types.push_back(std::string(parts[1]));
    } else {
      continue;
    }
    node.gpus += count;
  }
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
  node.gpu_type = types.size() == 1 ? types[0] : "";
}

// 'text' for sh, with any ' inside kept.
std::string ShellQuoted(absl::string_view text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

}  // namespace

absl::StatusOr<std::vector<SlurmNode>> ParseSlurmNodes(absl::string_view text) {
  std::vector<SlurmNode> nodes;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    line = absl::StripAsciiWhitespace(line);
    if (!absl::StartsWith(line, "NodeName=")) continue;
    std::map<std::string, std::string> f = Fields(line);
    SlurmNode node{.name = f["NodeName"], .state = f["State"]};
    if (!absl::SimpleAtoi(f["CPUTot"], &node.cpus) ||
        !absl::SimpleAtoi(f["RealMemory"], &node.memory_mb)) {
      return absl::InvalidArgumentError(
          absl::StrCat("scontrol: node line without CPUTot or RealMemory: ", line));
    }
    if (f.contains("Gres") && f["Gres"] != "(null)") ParseGres(f["Gres"], node);
    (void)absl::SimpleAtoi(f["CPUAlloc"], &node.cpus_alloc);
    (void)absl::SimpleAtoi(f["AllocMem"], &node.alloc_mem_mb);
    for (absl::string_view p : absl::StrSplit(f["Partitions"], ',', absl::SkipEmpty())) {
      node.partitions.emplace_back(p);
    }
    nodes.push_back(std::move(node));
  }
  return nodes;
}

std::string SlurmProgram(const SlurmOptions& options, absl::string_view name) {
  return SlurmBinary(options.bin_dir, name);
}

std::string SlurmBatchScript(const std::string& shim_path, const std::string& attempt_dir) {
  return absl::StrCat(
      "#!/bin/sh\n"
      "# A dlab attempt: dlab-shim runs its tasks and records how they end in this directory.\n"
      "export DLAB_NO_CGROUPS=1\n"
      "export DLAB_GRANTED_GPUS=\"${CUDA_VISIBLE_DEVICES-}\"\n"
      "exec ",
      ShellQuoted(shim_path), " --attempt-dir ", ShellQuoted(attempt_dir), "\n");
}

std::string SlurmJobName(absl::string_view tag, int64_t job_id, int attempt) {
  return absl::StrCat("dlab-", tag, "-", job_id, "-", attempt);
}

SlurmJobResources SlurmResources(const LaunchRequest& request) {
  auto mib = [](int64_t bytes) { return (bytes + (1 << 20) - 1) >> 20; };
  auto cpus = [](int64_t millis) { return std::max<int64_t>(1, (millis + 999) / 1000); };
  SlurmJobResources r;
  if (request.tasks.size() == 1) {
    // The shim runs the one task itself, on one node.
    const TaskAllocation& a = request.tasks[0].allocation;
    r = {.one_node = true, .tasks = 1, .cpus_per_task = cpus(a.cpu_millis)};
    if (a.memory_bytes > 0) r.memory_mb = mib(a.memory_bytes);
    r.gpus = static_cast<int>(a.gpus.size());
  } else {
    // A gang: one Slurm task per dlab task, as many per node as fit (Slurm places them, on
    // one node or several); the shim starts each as a job step. Tasks of different sizes
    // (roles) are each given the largest task's share.
    TaskAllocation share = LargestTaskShare(request.tasks);
    r = {.tasks = static_cast<int>(request.tasks.size()), .cpus_per_task = cpus(share.cpu_millis)};
    if (share.memory_bytes > 0) {
      r.memory_mb_per_cpu = (mib(share.memory_bytes) + r.cpus_per_task - 1) / r.cpus_per_task;
    }
    r.gpus = static_cast<int>(share.gpus.size());
  }
  r.gpu_type = request.gpu_type;
  if (request.max_runtime > absl::ZeroDuration()) {
    r.time_minutes = static_cast<int64_t>(std::ceil(absl::ToDoubleMinutes(
        request.max_runtime + request.kill_grace + absl::Minutes(1))));
  }
  return r;
}

std::string SlurmJobResources::Gres() const {
  return gpu_type.empty() ? absl::StrCat("gpu:", gpus) : absl::StrCat("gpu:", gpu_type, ":", gpus);
}

std::string SlurmJobResources::GpusPerTask() const {
  return gpu_type.empty() ? absl::StrCat(gpus) : absl::StrCat(gpu_type, ":", gpus);
}

std::vector<std::string> SbatchCommand(const LaunchRequest& request, const SlurmOptions& options,
                                       const std::string& job_name,
                                       const std::string& script_path) {
  SlurmJobResources r = SlurmResources(request);
  std::vector<std::string> argv = {SlurmProgram(options, "sbatch"),
                                   "--parsable",
                                   absl::StrCat("--job-name=", job_name),
                                   absl::StrCat("--output=", request.attempt_dir, "/shim.log"),
                                   absl::StrCat("--chdir=", request.attempt_dir),
                                   "--no-requeue"};
  if (r.one_node) argv.push_back("--nodes=1");
  argv.insert(argv.end(), {absl::StrCat("--ntasks=", r.tasks),
                           absl::StrCat("--cpus-per-task=", r.cpus_per_task)});
  if (r.memory_mb > 0) argv.push_back(absl::StrCat("--mem=", r.memory_mb));
  if (r.memory_mb_per_cpu > 0) argv.push_back(absl::StrCat("--mem-per-cpu=", r.memory_mb_per_cpu));
  if (r.gpus > 0) {
    argv.push_back(r.one_node ? absl::StrCat("--gres=", r.Gres())
                              : absl::StrCat("--gpus-per-task=", r.GpusPerTask()));
  }
  if (r.time_minutes > 0) argv.push_back(absl::StrCat("--time=", r.time_minutes));
  if (!options.partition.empty()) argv.push_back(absl::StrCat("--partition=", options.partition));
  if (!options.account.empty()) argv.push_back(absl::StrCat("--account=", options.account));
  if (!options.qos.empty()) argv.push_back(absl::StrCat("--qos=", options.qos));
  argv.push_back(script_path);
  return argv;
}

std::string SlurmRestSubmitBody(const LaunchRequest& request, const SlurmOptions& options,
                                const std::string& job_name, const std::string& script,
                                const std::map<std::string, std::string>& environment) {
  SlurmJobResources r = SlurmResources(request);
  nlohmann::json job = {{"name", job_name},
                        {"current_working_directory", request.attempt_dir},
                        {"standard_output", absl::StrCat(request.attempt_dir, "/shim.log")},
                        {"requeue", false},
                        {"tasks", r.tasks},
                        {"cpus_per_task", r.cpus_per_task},
                        {"environment", environment}};
  if (r.one_node) job["nodes"] = {1, 1};
  if (r.memory_mb > 0) job["memory_per_node"] = r.memory_mb;
  if (r.memory_mb_per_cpu > 0) job["memory_per_cpu"] = r.memory_mb_per_cpu;
  if (r.gpus > 0) {
    if (r.one_node) {
      job["gres"] = r.Gres();
    } else {
      job["gpus_per_task"] = r.GpusPerTask();
    }
  }
  if (r.time_minutes > 0) job["time_limit"] = r.time_minutes;
  if (!options.partition.empty()) job["partition"] = options.partition;
  if (!options.account.empty()) job["account"] = options.account;
  if (!options.qos.empty()) job["qos"] = options.qos;
  nlohmann::json body = {{"script", script}, {"job", std::move(job)}};
  // An environment variable that is not UTF-8 must not make the submission fail.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<int64_t> ParseSlurmRestSubmit(long http_status, absl::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> errors;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const nlohmann::json& e : j["errors"]) {
      if (!e.is_object()) continue;
      std::string text;
      for (const char* key : {"error", "description"}) {
        if (e.contains(key) && e[key].is_string() && !e[key].get<std::string>().empty()) {
          absl::StrAppend(&text, text.empty() ? "" : ": ", e[key].get<std::string>());
        }
      }
      if (!text.empty()) errors.push_back(std::move(text));
    }
  }
  int64_t id = 0;
  if (j.is_object() && j.contains("job_id") && j["job_id"].is_number_integer()) {
    id = j["job_id"].get<int64_t>();
  }
  if (http_status == 200 && id > 0 && errors.empty()) return id;
  std::string said = !errors.empty() ? absl::StrJoin(errors, "; ")
                     : j.is_discarded() ? std::string(body.substr(0, 200))
                                        : "no job id in the answer";
  return absl::UnavailableError(
      absl::StrCat("slurmrestd refused the submission (HTTP ", http_status, "): ", said));
}

absl::StatusOr<int64_t> ParseSbatchJobId(absl::string_view out) {
  absl::string_view first = absl::StripAsciiWhitespace(out);
  first = first.substr(0, first.find_first_of(";\n"));
  int64_t id = 0;
  if (!absl::SimpleAtoi(first, &id) || id <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("sbatch printed no job id: '", out, "'"));
  }
  return id;
}

SlurmStateMeaning InterpretSlurmState(absl::string_view state) {
  // squeue may append a reason after '+' or a space in some versions; only the state word counts.
  std::string s = absl::AsciiStrToUpper(state.substr(0, state.find_first_of(" +")));
  if (s == "PENDING" || s == "CONFIGURING" || s == "REQUEUED" || s == "REQUEUE_HOLD" ||
      s == "RESV_DEL_HOLD" || s == "SUSPENDED" || s == "STOPPED") {
    return {.active = true, .pending = s != "SUSPENDED" && s != "STOPPED"};
  }
  if (s == "RUNNING" || s == "COMPLETING" || s == "SIGNALING" || s == "STAGE_OUT" ||
      s == "RESIZING") {
    return {.active = true};
  }
  static const std::map<std::string, std::string>* stopped = new std::map<std::string, std::string>{
      {"NODE_FAIL", "slurm: the node running the attempt failed (NODE_FAIL)"},
      {"TIMEOUT", "slurm: the job reached its time limit (TIMEOUT)"},
      {"PREEMPTED", "slurm: the job was preempted by Slurm (PREEMPTED)"},
      {"OUT_OF_MEMORY", "slurm: the job exceeded its memory (OUT_OF_MEMORY)"},
      {"BOOT_FAIL", "slurm: the node failed to boot (BOOT_FAIL)"},
      {"DEADLINE", "slurm: the job missed its deadline (DEADLINE)"},
      {"CANCELLED", "slurm: the job was cancelled outside dlab (CANCELLED)"}};
  if (auto it = stopped->find(s); it != stopped->end()) {
    return {.stopped_by_slurm = true, .lost = it->second};
  }
  if (s.empty()) return {.lost = "slurm no longer knows the job"};
  return {.lost = absl::StrCat("slurm: the job ended (", s,
                               ") without dlab-shim recording how its tasks ended")};
}

std::vector<std::pair<int64_t, std::string>> ParseSqueueStates(absl::string_view out) {
  std::vector<std::pair<int64_t, std::string>> states;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t id = 0;
    if (words.size() >= 2 && absl::SimpleAtoi(words[0], &id)) {
      states.emplace_back(id, std::string(words[1]));
    }
  }
  return states;
}

}  // namespace dlab
