#include "common/job_spec.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/yaml_json.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;

absl::StatusOr<JobSpec> FromYaml(absl::string_view yaml) {
  auto j = ParseYamlOrJson(yaml);
  if (!j.ok()) return j.status();
  return ParseJobSpec(*j);
}

// The error message of parsing yaml; fails the test if it parsed.
std::string ErrorOf(absl::string_view yaml) {
  auto spec = FromYaml(yaml);
  EXPECT_FALSE(spec.ok()) << yaml;
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

TEST(JobSpecTest, ParsesTheDocumentedExample) {
  auto spec = FromYaml(R"(
name: digits
command: ["/usr/bin/python3", "train.py", "--epochs", "10"]
workdir: .
env: {OMP_NUM_THREADS: "2"}
resources: {cpus: 2, memory: 4Gi, gpus: 1, gpu_type: H100}
priority: 0
max_runtime: 2h
max_restarts: 3
labels: {project: mnist}
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "digits");
  EXPECT_EQ(spec->command,
            (std::vector<std::string>{"/usr/bin/python3", "train.py", "--epochs", "10"}));
  EXPECT_FALSE(spec->shell);
  EXPECT_EQ(spec->env.at("OMP_NUM_THREADS"), "2");
  EXPECT_EQ(spec->resources.cpu_millis, 2000);
  EXPECT_EQ(spec->resources.memory_bytes, 4LL << 30);
  EXPECT_EQ(spec->resources.gpus, 1);
  EXPECT_EQ(spec->resources.gpu_type, "H100");
  EXPECT_EQ(spec->max_runtime, absl::Hours(2));
  EXPECT_EQ(spec->max_restarts, 3);
  EXPECT_EQ(spec->labels.at("project"), "mnist");
}

TEST(JobSpecTest, ShellStringAndDefaults) {
  auto spec = FromYaml("name: a\ncommand: echo hi && exit 3\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->shell);
  EXPECT_EQ(spec->command, (std::vector<std::string>{"/bin/sh", "-c", "echo hi && exit 3"}));
  EXPECT_EQ(spec->workdir, ".");
  EXPECT_EQ(spec->resources.cpu_millis, 1000);
  EXPECT_EQ(spec->resources.gpus, 0);
  EXPECT_EQ(spec->max_runtime, absl::ZeroDuration());
}

TEST(JobSpecTest, UnquotedScalarsInEnvBecomeStrings) {
  auto spec = FromYaml("name: a\ncommand: [x]\nenv: {THREADS: 2, DEBUG: true}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->env.at("THREADS"), "2");
  EXPECT_EQ(spec->env.at("DEBUG"), "true");
}

TEST(JobSpecTest, ErrorsNameTheField) {
  EXPECT_EQ(ErrorOf("command: [x]\n"), "name: is required");
  EXPECT_EQ(ErrorOf("name: a\n"), "command: is required");
  EXPECT_TRUE(ErrorOf("name: a\ncommand: [x]\ncolour: red\n").starts_with("colour: unknown field"));
  EXPECT_TRUE(ErrorOf("name: a\ncommand: [x]\nresources: {gpu: 1}\n")
                  .starts_with("resources.gpu: unknown field"));
  EXPECT_EQ(ErrorOf("name: a\ncommand: [x]\nresources: {gpus: two}\n"),
            "resources.gpus: must be an integer, got a string");
  EXPECT_TRUE(ErrorOf("name: a\ncommand: [x]\nresources: {memory: 4GB}\n")
                  .starts_with("resources.memory: '4GB' is not a memory quantity"));
  EXPECT_TRUE(ErrorOf("name: a\ncommand: [x]\nresources: {cpus: lots}\n")
                  .starts_with("resources.cpus: 'lots' is not a CPU quantity"));
  EXPECT_EQ(ErrorOf("name: a\ncommand: 5\n"),
            "command: must be a list of strings or one shell string, got an integer");
  EXPECT_EQ(ErrorOf("name: a\ncommand: []\n"), "command: is empty");
  EXPECT_EQ(ErrorOf("name: a\ncommand: [x]\nworkdir: ../up\n"),
            "workdir: must be a relative path inside the code snapshot, without '..'");
  EXPECT_EQ(ErrorOf("name: a\ncommand: [x]\nmax_restarts: -1\n"),
            "max_restarts: must be between 0 and 100, got -1");
  EXPECT_TRUE(
      ErrorOf("name: a\ncommand: [x]\nmax_runtime: soon\n").starts_with("max_runtime: 'soon'"));
  EXPECT_EQ(ErrorOf("name: a\ncommand: [x]\nenv: {CUDA_VISIBLE_DEVICES: '0'}\n"),
            "env.CUDA_VISIBLE_DEVICES: is set by dlab and cannot be overridden");
  EXPECT_EQ(ErrorOf("name: a\ncommand: [x]\nresources: {gpu_type: H100}\n"),
            "resources.gpu_type: is set but resources.gpus is 0");
  EXPECT_TRUE(ErrorOf("name: 'bad name!'\ncommand: [x]\n").starts_with("name: must be"));
  EXPECT_TRUE(ErrorOf("- just\n- a list\n").starts_with("spec: must be a mapping"));
  EXPECT_TRUE(ErrorOf("name: [unclosed\n").starts_with("cannot parse YAML/JSON at line"));
}

TEST(JobSpecTest, NormalizedJsonRoundTrips) {
  auto spec = FromYaml(
      "name: a\ncommand: python3 x.py\nresources: {cpus: 500m, memory: 1536Mi, gpus: 2, gpu_type: "
      "A100}\n"
      "max_runtime: 90m\nlabels: {team: vision}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  json j = JobSpecToJson(*spec);
  EXPECT_EQ(j["resources"]["cpus"], "500m");
  EXPECT_EQ(j["resources"]["memory"], "1536Mi");
  EXPECT_EQ(j["max_runtime"], "1h30m");
  EXPECT_EQ(j["command"], "python3 x.py");
  auto again = ParseJobSpec(j);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(JobSpecToJson(*again), j);
}

TEST(JobSpecTest, AnImageIsKeptAndCheckedLoosely) {
  auto spec = FromYaml("name: a\ncommand: x\nimage: ghcr.io/team/train:1.0@sha256:ab12\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->image, "ghcr.io/team/train:1.0@sha256:ab12");
  EXPECT_EQ(JobSpecToJson(*spec)["image"], "ghcr.io/team/train:1.0@sha256:ab12");
  EXPECT_FALSE(JobSpecToJson(*FromYaml("name: a\ncommand: x\n")).contains("image"));
  EXPECT_EQ(ErrorOf("name: a\ncommand: x\nimage: 3\n"), "image: must be a string, got an integer");
  EXPECT_TRUE(ErrorOf("name: a\ncommand: x\nimage: 'Ubuntu latest'\n")
                  .starts_with("image: must be an image reference"));
}

TEST(JobSpecTest, GpuTypeListsAsAListOrACommaSeparatedString) {
  for (const char* form : {"[H100, A100]", "'H100,A100'", "' H100 , A100 '"}) {
    auto spec =
        FromYaml(absl::StrCat("name: a\ncommand: x\nresources: {gpus: 1, gpu_type: ", form, "}\n"));
    ASSERT_TRUE(spec.ok()) << form << ": " << spec.status();
    EXPECT_EQ(spec->resources.gpu_type, "H100,A100") << form;
    json j = JobSpecToJson(*spec);
    EXPECT_EQ(j["resources"]["gpu_type"], json::array({"H100", "A100"})) << form;
    auto again = ParseJobSpec(j);  // what the fuzzer checks: the normalized spec parses again
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(JobSpecToJson(*again), j);
  }
  // Found by the job-spec fuzzer: empty names between commas used to be accepted in a string
  // but refused in the list the spec normalizes to.
  for (const char* bad : {"'A1,,ue'", "'A100,'", "[H100, '']"}) {
    EXPECT_EQ(
        ErrorOf(absl::StrCat("name: a\ncommand: x\nresources: {gpus: 1, gpu_type: ", bad, "}\n")),
        "resources.gpu_type: has an empty type name (e.g. [H100, A100] or \"H100,A100\")")
        << bad;
  }
  for (const char* empty : {"''", "[]", "' '"}) {
    EXPECT_EQ(
        ErrorOf(absl::StrCat("name: a\ncommand: x\nresources: {gpus: 1, gpu_type: ", empty, "}\n")),
        "resources.gpu_type: is empty; name a type (e.g. H100), or leave it out for any type")
        << empty;
  }
}

TEST(JobSpecTest, TasksAsACount) {
  auto spec = FromYaml("name: ddp\ncommand: python3 train.py\ntasks: 4\nresources: {cpus: 2}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->task_groups.size(), 1u);
  EXPECT_EQ(spec->task_groups[0].count, 4);
  EXPECT_EQ(spec->task_groups[0].role, "");
  EXPECT_EQ(JobSpecToJson(*spec)["tasks"], 4);
  auto one = FromYaml("name: a\ncommand: x\ntasks: 1\n");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->task_groups.empty());
}

TEST(JobSpecTest, TasksByRoleWithTheirOwnResourcesAndCommand) {
  auto spec = FromYaml(R"(
name: tf
command: python3 worker.py
resources: {cpus: 1, memory: 2Gi}
restart_backoff: 250ms
max_infra_restarts: 3
tasks:
  worker: 2
  ps: {count: 1, resources: {memory: 512Mi}, command: [python3, ps.py]}
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->task_groups.size(), 2u);
  EXPECT_EQ(spec->task_groups[0].role, "ps");  // roles in name order
  EXPECT_EQ(spec->task_groups[0].resources->memory_bytes, 512LL << 20);
  EXPECT_EQ(spec->task_groups[0].resources->cpu_millis, 1000);  // inherited from the job
  EXPECT_EQ(spec->task_groups[0].command, (std::vector<std::string>{"python3", "ps.py"}));
  EXPECT_EQ(spec->task_groups[1].role, "worker");
  EXPECT_EQ(spec->task_groups[1].count, 2);
  EXPECT_FALSE(spec->task_groups[1].resources.has_value());
  EXPECT_EQ(spec->restart_backoff, absl::Milliseconds(250));
  EXPECT_EQ(spec->max_infra_restarts, 3);
  json j = JobSpecToJson(*spec);
  auto again = ParseJobSpec(j);
  ASSERT_TRUE(again.ok()) << again.status() << j.dump();
  EXPECT_EQ(JobSpecToJson(*again), j);
  EXPECT_EQ(again->task_groups, spec->task_groups);
}

TEST(JobSpecTest, TaskErrorsNameTheField) {
  EXPECT_EQ(ErrorOf("name: a\ncommand: x\ntasks: 0\n"), "tasks: must be between 1 and 256, got 0");
  EXPECT_EQ(ErrorOf("name: a\ncommand: x\ntasks: two\n"),
            "tasks: must be a number of tasks or a mapping of role to count (e.g. {ps: 1, "
            "worker: 2}), got a string");
  EXPECT_EQ(ErrorOf("name: a\ncommand: x\ntasks: {worker: {cont: 2}}\n"),
            "tasks.worker.cont: unknown field (known: command, count, resources)");
  EXPECT_EQ(ErrorOf("name: a\ncommand: x\ntasks: {worker: {count: 1, resources: {gpus: -1}}}\n"),
            "tasks.worker.resources.gpus: must be between 0 and 1024, got -1");
  EXPECT_EQ(ErrorOf("name: a\ncommand: x\ntasks: {ps: 200, worker: 100}\n"),
            "tasks: 300 tasks in all; at most 256");
  EXPECT_EQ(ErrorOf("name: a\ncommand: x\nrestart_backoff: 1h\n"),
            "restart_backoff: must be at most 5m");
}

}  // namespace
}  // namespace dlab

namespace dlab {
namespace {

// Found by fuzz/job_spec_fuzzer: YAML aliases that refer to themselves or expand exponentially
// are refused instead of overflowing the stack or running for minutes.
TEST(YamlJsonTest, SelfReferringAndExplodingAliasesAreRefused) {
  auto self = ParseYamlOrJson("name: &a [*a]\n");
  ASSERT_FALSE(self.ok());
  EXPECT_NE(self.status().message().find("nested too deeply, or aliases expand too far"),
            std::string::npos)
      << self.status();
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'j'; ++level) {
    std::string prev(1, static_cast<char>(level - 1));
    bomb += std::string(1, level) + ": &" + level + " [*" + prev + ", *" + prev + ", *" + prev +
            ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" +
            prev + ", *" + prev + "]\n";
  }
  EXPECT_FALSE(ParseYamlOrJson(bomb).ok());
  EXPECT_TRUE(ParseYamlOrJson("a: &a {x: 1}\nb: *a\n").ok());  // ordinary aliases still work
}

// Also from the fuzzer: a role without GPUs does not inherit the job's GPU type, so the
// normalized spec parses again.
TEST(JobSpecTest, ARoleWithoutGpusDropsTheJobsGpuType) {
  auto j = ParseYamlOrJson(
      "name: x\ncommand: 'true'\nresources: {gpus: 1, gpu_type: H100}\n"
      "tasks: {worker: 2, ps: {count: 1, resources: {gpus: 0}}}\n");
  ASSERT_TRUE(j.ok());
  auto spec = ParseJobSpec(*j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto again = ParseJobSpec(JobSpecToJson(*spec));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(JobSpecToJson(*again), JobSpecToJson(*spec));
}

TEST(JobSpecTest, ARoleMayTakeAnyGpuTypeWhereTheJobAsksForOne) {
  auto spec = FromYaml(
      "name: x\ncommand: 'true'\nresources: {gpus: 1, gpu_type: H100}\n"
      "tasks: {worker: 2, eval: {count: 1, resources: {gpu_type: ''}}}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->task_groups.size(), 2u);
  EXPECT_EQ(spec->task_groups[0].role, "eval");
  ASSERT_TRUE(spec->task_groups[0].resources.has_value());
  EXPECT_EQ(spec->task_groups[0].resources->gpu_type, "");
  EXPECT_EQ(spec->task_groups[0].resources->gpus, 1);
  EXPECT_EQ(spec->resources.gpu_type, "H100");  // what worker inherits
}

}  // namespace
}  // namespace dlab
