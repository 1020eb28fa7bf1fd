#include "backend/kubernetes/kube_objects.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dlab {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

KubeOptions Options() {
  KubeOptions o;
  o.namespace_ = "ml";
  o.image = "ghcr.io/team/train:1";
  o.data_dir = "/var/lib/dlab";
  o.data_claim = "dlab-data";
  o.gpu_type_label = "dlab.io/gpu-type";
  return o;
}

LaunchRequest Request(int tasks) {
  LaunchRequest r{.job_id = 7,
                  .attempt = 2,
                  .workdir = "/var/lib/dlab/jobs/7/attempts/2/code/src",
                  .env = {{"DLAB_TOKEN", "tok"},
                          {"DLAB_API_URL", "http://127.0.0.1:8080"},
                          {"GREETING", "cost $(HOME) $5"}},
                  .attempt_dir = "/var/lib/dlab/jobs/7/attempts/2",
                  .max_runtime = absl::Minutes(90),
                  .kill_grace = absl::Seconds(20),
                  .acceptable_gpu_types = "H100,A100",
                  .tenant_id = 3,
                  .snapshot = "sha256:abc"};
  for (int i = 0; i < tasks; ++i) {
    r.tasks.push_back({.rank = i,
                       .argv = {"python3", "train.py"},
                       .env = {{"RANK", std::to_string(i)},
                               {"MASTER_ADDR", "127.0.0.1"},
                               {"DLAB_HOSTFILE", "/var/lib/dlab/jobs/7/attempts/2/hostfile"}},
                       .allocation = {.cpu_millis = 2000, .memory_bytes = 4LL << 30, .gpus = {4}}});
  }
  return r;
}

// The value (or valueFrom) of a container's env var; null when absent.
json EnvOf(const json& container, const std::string& name) {
  for (const json& e : container["env"]) {
    if (e["name"] == name) return e.contains("value") ? e["value"] : e["valueFrom"];
  }
  return nullptr;
}

TEST(KubeObjectsTest, AGangIsAnIndexedJobWhoseRankIsTheCompletionIndex) {
  auto m = AttemptManifests(Request(2), Options(), "0a1b2c3d");
  ASSERT_TRUE(m.ok()) << m.status();
  const json& job = m->job;
  EXPECT_EQ(job["metadata"]["name"], "dlab-0a1b2c3d-7-2");
  EXPECT_EQ(job["metadata"]["namespace"], "ml");
  EXPECT_EQ(job["metadata"]["labels"]["dlab.io/job"], "7");
  EXPECT_EQ(job["metadata"]["labels"]["dlab.io/tenant"], "3");
  const json& spec = job["spec"];
  EXPECT_EQ(spec["completionMode"], "Indexed");
  EXPECT_EQ(spec["completions"], 2);
  EXPECT_EQ(spec["parallelism"], 2);
  EXPECT_EQ(spec["backoffLimit"], 0);
  EXPECT_EQ(spec["activeDeadlineSeconds"], 5400);
  EXPECT_FALSE(spec.contains("successPolicy"));
  const json& pod = spec["template"]["spec"];
  EXPECT_EQ(pod["subdomain"], "dlab-0a1b2c3d-7-2");
  EXPECT_EQ(pod["restartPolicy"], "Never");
  EXPECT_EQ(pod["terminationGracePeriodSeconds"], 20);
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["image"], "ghcr.io/team/train:1");
  EXPECT_EQ(c["command"], json::array({"python3", "train.py"}));  // no per-rank shell needed
  EXPECT_EQ(c["workingDir"], "/dlab/code/src");
  EXPECT_EQ(EnvOf(c, "RANK")["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']");
  EXPECT_EQ(EnvOf(c, "NODE_RANK")["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']");
  EXPECT_EQ(EnvOf(c, "MASTER_ADDR"), "dlab-0a1b2c3d-7-2-0.dlab-0a1b2c3d-7-2");
  EXPECT_EQ(EnvOf(c, "MASTER_PORT"), "29500");
  EXPECT_EQ(EnvOf(c, "LOCAL_RANK"), "0");                // one task per pod
  EXPECT_EQ(EnvOf(c, "CUDA_VISIBLE_DEVICES"), "0");      // the pod's first GPU, not the node's 4
  EXPECT_EQ(EnvOf(c, "GREETING"), "cost $$(HOME) $$5");  // not expanded by Kubernetes
  EXPECT_EQ(c["resources"]["limits"]["nvidia.com/gpu"], "1");
  EXPECT_EQ(c["resources"]["limits"]["memory"], "4Gi");
  EXPECT_EQ(c["resources"]["requests"]["cpu"], "2");
  EXPECT_EQ(pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
               ["nodeSelectorTerms"][0]["matchExpressions"][0],
            json({{"key", "dlab.io/gpu-type"}, {"operator", "In"}, {"values", {"H100", "A100"}}}));
  EXPECT_EQ(pod["volumes"][1]["persistentVolumeClaim"]["claimName"], "dlab-data");
  EXPECT_EQ(c["volumeMounts"][1]["mountPath"], "/var/lib/dlab");  // same paths as dlabd's
  const json& init = pod["initContainers"][0];
  EXPECT_EQ(EnvOf(init, "DLAB_CODE_URL"), "http://127.0.0.1:8080/api/v1/jobs/7/code");
  EXPECT_EQ(m->hostfile,
            "dlab-0a1b2c3d-7-2-0.dlab-0a1b2c3d-7-2 slots=1\n"
            "dlab-0a1b2c3d-7-2-1.dlab-0a1b2c3d-7-2 slots=1\n");
  const json& svc = m->service;
  EXPECT_EQ(svc["spec"]["clusterIP"], "None");
  EXPECT_EQ(svc["spec"]["selector"]["batch.kubernetes.io/job-name"], "dlab-0a1b2c3d-7-2");
}

TEST(KubeObjectsTest, RolesGetTheirOwnEnvironmentAndCommandThroughAShellCase) {
  LaunchRequest r = Request(3);
  r.tasks[0].role = "ps";
  r.tasks[0].auxiliary = true;
  r.tasks[0].argv = {"python3", "ps.py", "it's"};
  for (int i : {1, 2}) {
    r.tasks[i].role = "worker";
    r.tasks[i].role_index = i - 1;
  }
  auto m = AttemptManifests(r, Options(), "t");
  ASSERT_TRUE(m.ok()) << m.status();
  const json& c = m->job["spec"]["template"]["spec"]["containers"][0];
  ASSERT_EQ(c["command"].size(), 4u);
  EXPECT_EQ(c["command"][0], "/bin/sh");
  std::string script = c["command"][2];
  EXPECT_THAT(script, HasSubstr("case \"$$JOB_COMPLETION_INDEX\" in"));
  EXPECT_THAT(script, HasSubstr("0) export DLAB_TASK_INDEX='0'; export DLAB_TASK_ROLE='ps';"));
  EXPECT_THAT(script, HasSubstr("exec 'python3' 'ps.py' 'it'\\''s' ;;"));
  EXPECT_THAT(script, HasSubstr("2) export DLAB_TASK_INDEX='1'; export DLAB_TASK_ROLE='worker';"));
  EXPECT_THAT(script, HasSubstr("\"task\":{\"index\":1,\"type\":\"worker\"}"));  // TF_CONFIG
  EXPECT_THAT(script, HasSubstr("t-7-2-1.dlab-t-7-2:2222"));
  // Done when the workers are: the parameter server is then stopped.
  EXPECT_EQ(m->job["spec"]["successPolicy"]["rules"][0]["succeededIndexes"], "1-2");
}

TEST(KubeObjectsTest, WithoutAnImageNothingCanRun) {
  KubeOptions o = Options();
  o.image = "";
  EXPECT_THAT(AttemptManifests(Request(1), o, "t").status().message(),
              HasSubstr("the job names no image"));
  LaunchRequest r = Request(1);
  r.image = "own/image:2";
  auto m = AttemptManifests(r, o, "t");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->job["spec"]["template"]["spec"]["containers"][0]["image"], "own/image:2");
  r.snapshot = "";
  EXPECT_FALSE(
      AttemptManifests(r, o, "t")->job["spec"]["template"]["spec"].contains("initContainers"));
}

// ---- judging an attempt from its Job and pods ----

json Terminated(int code, const std::string& reason, const std::string& finished) {
  return {{"startedAt", "2026-11-22T10:00:00Z"},
          {"finishedAt", finished},
          {"exitCode", code},
          {"reason", reason}};
}

json Pod(int index, const std::string& phase, const json& state) {
  return {{"metadata", {{"name", "p-" + std::to_string(index)}}},
          {"status",
           {{"phase", phase},
            {"containerStatuses", json::array({{{"name", "task"}, {"state", state}}})}}}};
}

json JobWith(const std::string& type, const std::string& reason = "") {
  json job = {{"metadata", {{"name", "j"}}}, {"status", json::object()}};
  if (!type.empty()) {
    job["status"]["conditions"] =
        json::array({{{"type", type}, {"status", "True"}, {"reason", reason}, {"message", "m"}}});
  }
  return job;
}

TEST(KubeObjectsTest, RunningThenSucceeded) {
  KubeAttemptView v{.job = JobWith(""), .tasks = 1};
  EXPECT_EQ(JudgeAttempt(v).kind, KubeVerdict::kPending);
  v.pods[0] = Pod(0, "Running", {{"running", {{"startedAt", "2026-11-22T10:00:00Z"}}}});
  KubeVerdict running = JudgeAttempt(v);
  EXPECT_EQ(running.kind, KubeVerdict::kRunning);
  EXPECT_EQ(running.start_ms, ParseKubeTime("2026-11-22T10:00:00Z"));
  v.job = JobWith("Complete");
  v.pods[0] =
      Pod(0, "Succeeded", {{"terminated", Terminated(0, "Completed", "2026-11-22T10:05:00Z")}});
  KubeVerdict done = JudgeAttempt(v);
  ASSERT_EQ(done.kind, KubeVerdict::kEnded);
  EXPECT_EQ(done.exit.end_reason, "exited");
  EXPECT_EQ(done.exit.exit_code, 0);
  EXPECT_EQ(done.exit.end_time_ms, *ParseKubeTime("2026-11-22T10:05:00Z"));
}

TEST(KubeObjectsTest, AFailedGangNamesTheTaskThatFailedFirst) {
  KubeAttemptView v{.job = JobWith("Failed", "BackoffLimitExceeded"), .tasks = 2};
  v.pods[0] = Pod(0, "Failed", {{"terminated", Terminated(143, "Error", "2026-11-22T10:00:09Z")}});
  v.pods[1] = Pod(1, "Running", {{"running", {{"startedAt", "2026-11-22T10:00:00Z"}}}});
  EXPECT_EQ(JudgeAttempt(v).kind, KubeVerdict::kRunning);  // until every pod has ended
  v.pods[1] = Pod(1, "Failed", {{"terminated", Terminated(3, "Error", "2026-11-22T10:00:05Z")}});
  KubeVerdict verdict = JudgeAttempt(v);
  ASSERT_EQ(verdict.kind, KubeVerdict::kEnded);
  EXPECT_EQ(verdict.exit.end_reason, "exited");
  EXPECT_EQ(verdict.exit.exit_code, 3);
  EXPECT_EQ(verdict.exit.failed_rank, 1);
  EXPECT_EQ(verdict.exit.message, "task 1 exited with code 3; the other tasks were stopped");
  EXPECT_EQ(verdict.exit.tasks[0].end_reason, "stopped");
  EXPECT_EQ(verdict.exit.tasks[0].signal, "SIGTERM");
}

TEST(KubeObjectsTest, KubernetesReasonsBecomeDlabEndReasons) {
  struct Case {
    std::string job_condition, job_reason;
    json pod;
    bool cancel = false;
    std::string end_reason, message_has;
  };
  json evicted =
      Pod(0, "Failed", {{"terminated", Terminated(137, "Error", "2026-11-22T10:00:05Z")}});
  evicted["status"]["reason"] = "Evicted";
  evicted["status"]["message"] = "The node was low on resource: memory. ";
  json lost_node =
      Pod(0, "Failed", {{"terminated", Terminated(137, "Error", "2026-11-22T10:00:05Z")}});
  lost_node["status"]["conditions"] = json::array(
      {{{"type", "DisruptionTarget"}, {"status", "True"}, {"reason", "DeletionByTaintManager"}}});
  lost_node["dlab_deleted"] = true;
  json no_code = {{"metadata", {{"name", "p-0"}}},
                  {"status",
                   {{"phase", "Failed"},
                    {"initContainerStatuses",
                     json::array({{{"name", "code"},
                                   {"state", {{"terminated", Terminated(4, "Error", "x")}}}}})}}}};
  std::vector<Case> cases = {
      {"Failed", "BackoffLimitExceeded",
       Pod(0, "Failed", {{"terminated", Terminated(137, "OOMKilled", "2026-11-22T10:00:05Z")}}),
       false, "oom_killed", "OOMKilled"},
      {"Failed", "DeadlineExceeded",
       Pod(0, "Failed", {{"terminated", Terminated(143, "Error", "2026-11-22T10:00:05Z")}}), false,
       "max_runtime", "activeDeadlineSeconds"},
      {"Failed", "BackoffLimitExceeded", evicted, false, "lost", "was evicted: The node was low"},
      {"Failed", "BackoffLimitExceeded", lost_node, false, "lost", "DeletionByTaintManager"},
      {"Failed", "BackoffLimitExceeded", no_code, false, "lost", "could not fetch the code"},
      {"", "",
       Pod(0, "Failed", {{"terminated", Terminated(0, "Completed", "2026-11-22T10:00:05Z")}}), true,
       "cancelled", "cancelled: exited with code 0"},
  };
  for (const Case& c : cases) {
    KubeAttemptView v{.tasks = 1, .cancel_requested = c.cancel};
    if (!c.job_condition.empty()) v.job = JobWith(c.job_condition, c.job_reason);
    v.pods[0] = c.pod;
    KubeVerdict verdict = JudgeAttempt(v);
    ASSERT_EQ(verdict.kind, KubeVerdict::kEnded) << c.end_reason;
    EXPECT_EQ(verdict.exit.end_reason, c.end_reason);
    EXPECT_THAT(verdict.exit.message, HasSubstr(c.message_has)) << c.end_reason;
  }
  // The Job deleted by someone else, its pod with it.
  KubeAttemptView gone{.tasks = 1};
  gone.pods[0] = Pod(0, "Running", {{"running", {{"startedAt", "2026-11-22T10:00:00Z"}}}});
  gone.pods[0]["dlab_deleted"] = true;
  KubeVerdict verdict = JudgeAttempt(gone);
  EXPECT_EQ(verdict.exit.end_reason, "lost");
  EXPECT_THAT(verdict.exit.message, HasSubstr("deleted outside dlab"));
}

TEST(KubeObjectsTest, AnImageThatCannotBePulledEndsTheAttemptAndTheJob) {
  KubeAttemptView v{.job = JobWith(""), .tasks = 1};
  v.pods[0] = Pod(
      0, "Pending",
      {{"waiting", {{"reason", "ImagePullBackOff"}, {"message", "Back-off pulling image \"x\""}}}});
  KubeVerdict verdict = JudgeAttempt(v);
  ASSERT_EQ(verdict.kind, KubeVerdict::kEnded);
  EXPECT_TRUE(verdict.stop_job);
  EXPECT_EQ(verdict.exit.end_reason, "exec_failed");
  EXPECT_THAT(verdict.exit.message, HasSubstr("ImagePullBackOff: Back-off pulling image"));
  v.pods[0] = Pod(0, "Pending", {{"waiting", {{"reason", "ErrImagePull"}}}});
  EXPECT_EQ(JudgeAttempt(v).kind, KubeVerdict::kPending);  // may pass on the next try
}

TEST(KubeObjectsTest, AParameterServerStoppedBySuccessIsNotAFailure) {
  KubeAttemptView v{.job = JobWith("Complete"), .tasks = 2, .auxiliary = {true, false}};
  v.pods[0] = Pod(0, "Failed", {{"terminated", Terminated(143, "Error", "2026-11-22T10:00:09Z")}});
  v.pods[1] =
      Pod(1, "Succeeded", {{"terminated", Terminated(0, "Completed", "2026-11-22T10:00:05Z")}});
  KubeVerdict verdict = JudgeAttempt(v);
  ASSERT_EQ(verdict.kind, KubeVerdict::kEnded);
  EXPECT_EQ(verdict.exit.end_reason, "exited");
  EXPECT_EQ(verdict.exit.exit_code, 0);
  EXPECT_EQ(verdict.exit.tasks[0].end_reason, "stopped");
}

}  // namespace
}  // namespace dlab
