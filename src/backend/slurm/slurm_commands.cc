#include "backend/slurm/slurm_commands.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "backend/local/slurm_steps.h"

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

std::string Minutes(absl::Duration d) {
  return absl::StrCat(static_cast<int64_t>(std::ceil(absl::ToDoubleMinutes(d))));
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

std::vector<std::string> SbatchCommand(const LaunchRequest& request, const SlurmOptions& options,
                                       const std::string& job_name,
                                       const std::string& script_path) {
  const std::string& gpu_type = request.gpu_type;
  auto mib = [](int64_t bytes) { return (bytes + (1 << 20) - 1) >> 20; };
  auto cpus = [](int64_t millis) { return std::max<int64_t>(1, (millis + 999) / 1000); };
  std::vector<std::string> argv = {SlurmProgram(options, "sbatch"),
                                   "--parsable",
                                   absl::StrCat("--job-name=", job_name),
                                   absl::StrCat("--output=", request.attempt_dir, "/shim.log"),
                                   absl::StrCat("--chdir=", request.attempt_dir),
                                   "--no-requeue"};
  if (request.tasks.size() == 1) {
    // The shim runs the one task itself, on one node.
    const TaskAllocation& a = request.tasks[0].allocation;
    argv.insert(argv.end(),
                {"--nodes=1", "--ntasks=1", absl::StrCat("--cpus-per-task=", cpus(a.cpu_millis))});
    if (a.memory_bytes > 0) argv.push_back(absl::StrCat("--mem=", mib(a.memory_bytes)));
    if (!a.gpus.empty()) {
      argv.push_back(gpu_type.empty() ? absl::StrCat("--gres=gpu:", a.gpus.size())
                                      : absl::StrCat("--gres=gpu:", gpu_type, ":", a.gpus.size()));
    }
  } else {
    // A gang: one Slurm task per dlab task, as many per node as fit (Slurm places them, on
    // one node or several); the shim starts each as a job step. Tasks of different sizes
    // (roles) are each given the largest task's share.
    TaskAllocation share = LargestTaskShare(request.tasks);
    int64_t memory_bytes = share.memory_bytes;
    size_t gpus = share.gpus.size();
    int64_t task_cpus = cpus(share.cpu_millis);
    argv.insert(argv.end(), {absl::StrCat("--ntasks=", request.tasks.size()),
                             absl::StrCat("--cpus-per-task=", task_cpus)});
    if (memory_bytes > 0) {
      argv.push_back(
          absl::StrCat("--mem-per-cpu=", (mib(memory_bytes) + task_cpus - 1) / task_cpus));
    }
    if (gpus > 0) {
      argv.push_back(gpu_type.empty() ? absl::StrCat("--gpus-per-task=", gpus)
                                      : absl::StrCat("--gpus-per-task=", gpu_type, ":", gpus));
    }
  }
  if (request.max_runtime > absl::ZeroDuration()) {
    argv.push_back(absl::StrCat(
        "--time=", Minutes(request.max_runtime + request.kill_grace + absl::Minutes(1))));
  }
  if (!options.partition.empty()) argv.push_back(absl::StrCat("--partition=", options.partition));
  if (!options.account.empty()) argv.push_back(absl::StrCat("--account=", options.account));
  if (!options.qos.empty()) argv.push_back(absl::StrCat("--qos=", options.qos));
  argv.push_back(script_path);
  return argv;
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
