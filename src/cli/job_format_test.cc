#include "cli/job_format.h"

#include <gtest/gtest.h>

#include <string>

namespace dlab {
namespace {

using nlohmann::json;

absl::Time Now() {
  absl::Time t;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, "2026-11-22T12:00:00Z", &t, &error)) << error;
  return t;
}

json Job() {
  return json::parse(R"json({
    "id": 12, "name": "digits", "tenant": "vision", "owner": "alice", "state": "RUNNING",
    "reason": "started",
    "spec": {"name": "digits", "command": ["python", "train.py", "--note", "two words"],
             "workdir": ".", "resources": {"cpus": "2", "memory": "4Gi", "gpus": 1},
             "max_runtime": "2h", "max_restarts": 1},
    "snapshot": "sha256:9f2c", "priority": 0, "labels": {"project": "mnist"},
    "submit_time": "2026-11-22T11:55:00.123Z", "start_time": "2026-11-22T11:55:01.000Z",
    "end_time": null, "exit_code": null, "cancel_requested": false, "attempts": 1,
    "attempt_list": [{"attempt": 1, "state": "RUNNING", "reason": "", "exit_code": null,
      "create_time": "2026-11-22T11:55:00.200Z", "start_time": "2026-11-22T11:55:01.000Z",
      "end_time": null, "allocation": {"cpus": "2", "memory": "4Gi", "gpus": [0]},
      "limits": ["cpu: 2 CPUs enforced (cgroup v2)",
                 "memory: not enforced: cgroup v2 is not delegated"]}]
})json");
}

TEST(JobFormatTest, DescribeShowsWhatAUserNeeds) {
  std::string text = FormatJobDescription(Job(), Now());
  for (const char* expected : {
           "ID:           12\n",
           "Tenant:       vision\n",
           "Owner:        alice\n",
           "State:        RUNNING (started)\n",
           "Exit code:    -\n",
           "Submitted:    2026-11-22T11:55:00.123Z (4m ago)\n",
           "Command:      python train.py --note 'two words'\n",
           "Resources:    cpus 2, memory 4Gi, gpus 1\n",
           "Labels:       project=mnist\n",
           "allocation: cpus 2, memory 4Gi, gpus [0]\n",
           "      memory: not enforced: cgroup v2 is not delegated\n",
       }) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "in:\n" << text;
  }
}

// A job of three tasks (one ps, two workers) whose first attempt failed in a worker and whose
// second, resumed from a checkpoint, lost a task to the infrastructure and is restarting.
json DistributedJob() {
  return json::parse(R"json({
    "id": 7, "name": "resnet", "state": "QUEUED", "reason": "restarting after attempt 2",
    "spec": {"name": "resnet", "command": ["python", "train.py"], "workdir": ".",
             "resources": {"cpus": "4", "memory": "16Gi", "gpus": 1}, "max_restarts": 2,
             "tasks": {"ps": {"count": 1}, "worker": {"count": 2}}},
    "tasks": 3, "attempts": 2, "exit_code": null,
    "attempt_list": [
      {"attempt": 1, "state": "FAILED", "reason": "task 2 (worker 1) exited with code 3",
       "exit_code": 3, "failure": "user", "restart_counted": true, "resumed_from": null,
       "tasks": [
         {"rank": 0, "role": "ps", "role_index": 0, "exit_code": null, "signal": "SIGTERM",
          "end_reason": "stopped"},
         {"rank": 1, "role": "worker", "role_index": 0, "exit_code": 0, "signal": "",
          "end_reason": "exited"},
         {"rank": 2, "role": "worker", "role_index": 1, "exit_code": 3, "signal": "",
          "end_reason": "exited"}]},
      {"attempt": 2, "state": "FAILED", "reason": "task 1 was killed (out of memory)",
       "exit_code": null, "failure": "infrastructure", "restart_counted": false,
       "resumed_from": {"id": 3, "step": 100, "path": "/data/jobs/7/checkpoints/step-100"},
       "tasks": [
         {"rank": 0, "role": "ps", "role_index": 0, "exit_code": null, "signal": "SIGTERM",
          "end_reason": "stopped"},
         {"rank": 1, "role": "worker", "role_index": 0, "exit_code": null, "signal": "SIGKILL",
          "end_reason": ""},
         {"rank": 2, "role": "worker", "role_index": 1, "exit_code": null, "signal": "",
          "end_reason": ""}]}]
})json");
}

TEST(JobFormatTest, DescribeShowsTasksFailuresAndCheckpoints) {
  std::string text = FormatJobDescription(DistributedJob(), Now());
  for (const char* expected : {
           "Tasks:        3 (ps 1, worker 2)\n",
           "  Attempt 1: FAILED (task 2 (worker 1) exited with code 3), exit code 3\n"
           "    failure:    user (counted against max_restarts)\n"
           "    resumed:    -\n",
           "    tasks:\n"
           "      RANK  ROLE      EXIT            END\n"
           "      0     ps/0      signal SIGTERM  stopped\n"
           "      1     worker/0  0               exited\n"
           "      2     worker/1  3               exited\n"
           "  Attempt 2:",
           "    failure:    infrastructure (not counted against max_restarts)\n"
           "    resumed:    step 100, /data/jobs/7/checkpoints/step-100 (checkpoint 3)\n",
           "      1     worker/0  signal SIGKILL  -\n"
           "      2     worker/1  -               -\n",
       }) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "in:\n" << text;
  }
}

TEST(JobFormatTest, DescribeOfAPlainJobHasNoTaskRows) {
  json job = Job();
  job["tasks"] = 1;
  job["attempt_list"][0]["failure"] = nullptr;
  job["attempt_list"][0]["restart_counted"] = false;
  job["attempt_list"][0]["tasks"] = json::parse(
      R"([{"rank": 0, "role": "", "role_index": 0, "exit_code": null, "signal": "",
           "end_reason": ""}])");
  std::string text = FormatJobDescription(job, Now());
  EXPECT_NE(text.find("Tasks:        1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    failure:    -\n    resumed:    -\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("RANK"), std::string::npos) << text;
}

TEST(JobFormatTest, DescribeOfAnOlderServerShowsDashes) {
  // Job() has none of the fields of distributed jobs, checkpoints or failure classes.
  std::string text = FormatJobDescription(Job(), Now());
  EXPECT_NE(text.find("Tasks:        -\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    failure:    -\n    resumed:    -\n"), std::string::npos) << text;
  std::string bare = FormatJobDescription(json::parse(R"({"attempt_list": [{}]})"), Now());
  EXPECT_NE(bare.find("Tasks:        -\n"), std::string::npos) << bare;
  EXPECT_NE(bare.find("  Attempt -: -, exit code -\n    failure:    -\n    resumed:    -\n"),
            std::string::npos)
      << bare;
}

TEST(JobFormatTest, PlainTasksFromTheSpecAndRoleLessTaskRows) {
  json job = Job();
  job["spec"]["tasks"] = 2;
  job["attempt_list"][0]["tasks"] = json::parse(R"([
      {"rank": 0, "role": "", "role_index": 0, "exit_code": 1, "signal": "", "end_reason": "exited"},
      {"rank": 1, "role": "", "role_index": 1, "exit_code": null, "signal": "SIGTERM",
       "end_reason": "stopped"}])");
  std::string text = FormatJobDescription(job, Now());
  EXPECT_NE(text.find("Tasks:        2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("      RANK  ROLE  EXIT            END\n"
                      "      0     -     1               exited\n"
                      "      1     -     signal SIGTERM  stopped\n"),
            std::string::npos)
      << text;
}

TEST(JobFormatTest, MetricTable) {
  json series = json::parse(R"json([
    {"name": "accuracy", "count": 5000,
     "points": [[10, 1763800000.0, 0.1], [20, 1763800010.0, 0.5], [30, 1763800020.0, 0.9]],
     "latest": {"step": 5000, "time": 1763800500.5, "value": 0.98125}},
    {"name": "loss", "count": 8,
     "points": [[1, 1.0, 2.5], [2, 2.0, 1.75], [3, 3.0, 1.0], [4, 4.0, 0.75], [5, 5.0, 0.5],
                [6, 6.0, 0.375], [7, 7.0, 0.25], [8, 8.0, 0.25]],
     "latest": {"step": 8, "time": 8.0, "value": 0.25}},
    {"name": "lr", "count": 1, "points": [[0, 0.0, 0.001]],
     "latest": {"step": 0, "time": 0.0, "value": 0.001}},
    {"name": "tokens", "count": 3, "points": [[1, 1.0, 100], [2, 2.0, 100], [3, 3.0, 100]],
     "latest": {"step": 3, "time": 3.0, "value": 123456789.0}}])json");
  EXPECT_EQ(FormatMetricTable(series),
            "NAME      STEP  VALUE      POINTS  TREND\n"
            "accuracy  5000  0.9812     5000    ▁▅█\n"
            "loss      8     0.25       8       █▆▃▃▂▁▁▁\n"
            "lr        0     0.001      1       ▄\n"
            "tokens    3     1.235e+08  3       ▄▄▄\n");
}

TEST(JobFormatTest, MetricTableOfAnOlderServerOrEmptySeries) {
  // No "latest" and no "count": the last point and the number of points given stand in.
  json series = json::parse(R"json([
    {"name": "loss", "points": [[1, 1.0, 2.0], [2, 2.0, 1.0]]},
    {"name": "empty", "points": []},
    {"name": "odd"}])json");
  EXPECT_EQ(FormatMetricTable(series),
            "NAME   STEP  VALUE  POINTS  TREND\n"
            "loss   2     1      2       █▁\n"
            "empty  -     -      0       \n"
            "odd    -     -      -       \n");
}

TEST(JobFormatTest, CheckpointTable) {
  json checkpoints = json::parse(R"json([
    {"id": 1, "job_id": 7, "attempt": 1, "step": 100, "path": "/data/jobs/7/checkpoints/step-100",
     "metrics": {"loss": 0.30000001, "accuracy": 0.9}, "time": "2026-11-22T10:00:00.123Z"},
    {"id": 2, "job_id": 7, "attempt": 2, "step": 200, "path": "/data/jobs/7/checkpoints/step-200",
     "metrics": {}, "time": "2026-11-22T10:05:00.000Z"},
    {"id": 3}])json");
  EXPECT_EQ(FormatCheckpointTable(checkpoints),
            "ID  ATTEMPT  STEP  TIME                      PATH                               "
            "METRICS\n"
            "1   1        100   2026-11-22T10:00:00.123Z  /data/jobs/7/checkpoints/step-100  "
            "accuracy=0.9, loss=0.3\n"
            "2   2        200   2026-11-22T10:05:00.000Z  /data/jobs/7/checkpoints/step-200  -\n"
            "3   -        -     -                         -                                  -\n");
}

TEST(JobFormatTest, TableHasOneRowPerJobAndTruncatesLongReasons) {
  json queued = Job();
  queued["id"] = 13;
  queued["state"] = "QUEUED";
  queued["reason"] = std::string(100, 'r');
  queued["owner"] = "bob";
  json older_server = Job();
  older_server.erase("owner");
  std::string table = FormatJobTable(json::array({queued, Job(), older_server}), Now());
  EXPECT_EQ(table,
            "ID  NAME    OWNER  STATE    AGE  GPUS  REASON\n"
            "13  digits  bob    QUEUED   4m   1     " +
                std::string(45, 'r') +
                "...\n"
                "12  digits  alice  RUNNING  4m   1     started\n"
                "12  digits  -      RUNNING  4m   1     started\n");
}

TEST(JobFormatTest, QueueTableShowsPositionWaitAndEstimatedStart) {
  json queue = json::parse(R"json([
    {"position": 2, "id": 14, "name": "sweep", "owner": "alice", "priority": 10, "gpus": 4,
     "submit_time": "2026-11-22T11:30:00.000Z", "reason": "waiting for resources: gpus",
     "estimated_start": "2026-11-22T12:05:00.000Z"},
    {"position": 5, "id": 9, "name": "eval", "owner": "bob", "priority": 0, "gpus": 0,
     "submit_time": "2026-11-20T12:00:00.000Z", "reason": "waiting behind job 14\n(FIFO order)",
     "estimated_start": null},
    {"position": 6, "id": 21, "name": "late", "owner": "bob", "priority": 0, "gpus": 1,
     "submit_time": "2026-11-22T11:59:58.000Z", "reason": "",
     "estimated_start": "2026-11-22T11:59:00.000Z"},
    {"id": 22}])json");
  EXPECT_EQ(FormatQueueTable(queue, Now()),
            "POS  ID  NAME   OWNER  PRIO  GPUS  WAITING  EST. START  REASON\n"
            "2    14  sweep  alice  10    4     30m      in 5m       waiting for resources: gpus\n"
            "5    9   eval   bob    0     0     2d       -           waiting behind job 14 (FIFO "
            "order)\n"
            "6    21  late   bob    0     1     2s       now         \n"
            "-    22  -      -      -     -     -        -           -\n");
}

TEST(JobFormatTest, QueueTableTruncatesLongReasons) {
  json entry = {{"position", 1}, {"id", 3}, {"reason", std::string(100, 'r')}};
  std::string table = FormatQueueTable(json::array({entry}), Now());
  EXPECT_NE(table.find(std::string(45, 'r') + "...\n"), std::string::npos) << table;
  EXPECT_EQ(table.find(std::string(46, 'r')), std::string::npos) << table;
}

TEST(JobFormatTest, EventTable) {
  json events = json::parse(R"([
    {"id": 1, "time": "T1", "from": null, "to": "QUEUED", "reason": "submitted"},
    {"id": 2, "time": "T2", "from": "QUEUED", "to": "RUNNING", "reason": "scheduled: gpus [0]"}])");
  EXPECT_EQ(FormatEventTable(events),
            "TIME  FROM    TO       REASON\n"
            "T1    -       QUEUED   submitted\n"
            "T2    QUEUED  RUNNING  scheduled: gpus [0]\n");
}

TEST(JobFormatTest, ExitStatusOfAFollowedJob) {
  EXPECT_EQ(ExitStatusForJob("SUCCEEDED", json(0)), 0);
  EXPECT_EQ(ExitStatusForJob("FAILED", json(3)), 3);
  EXPECT_EQ(ExitStatusForJob("FAILED", json(nullptr)), 1);
  EXPECT_EQ(ExitStatusForJob("FAILED", json(0)), 1);
  EXPECT_EQ(ExitStatusForJob("CANCELLED", json(nullptr)), 130);
}

TEST(JobFormatTest, Age) {
  EXPECT_EQ(FormatAge(json("2026-11-22T11:59:30Z"), Now()), "30s");
  EXPECT_EQ(FormatAge(json("2026-11-22T09:00:00.000Z"), Now()), "3h");
  EXPECT_EQ(FormatAge(json("2026-11-19T12:00:00Z"), Now()), "3d");
  EXPECT_EQ(FormatAge(json(nullptr), Now()), "-");
}

TEST(JobFormatTest, TimeUntil) {
  EXPECT_EQ(FormatTimeUntil(json("2026-11-22T12:00:42Z"), Now()), "in 42s");
  EXPECT_EQ(FormatTimeUntil(json("2026-11-22T12:05:00.500Z"), Now()), "in 5m");
  EXPECT_EQ(FormatTimeUntil(json("2026-11-22T15:00:00Z"), Now()), "in 3h");
  EXPECT_EQ(FormatTimeUntil(json("2026-11-25T12:00:00Z"), Now()), "in 3d");
  EXPECT_EQ(FormatTimeUntil(json("2026-11-22T12:00:00.400Z"), Now()), "now");
  EXPECT_EQ(FormatTimeUntil(json("2026-11-22T11:00:00Z"), Now()), "now");
  EXPECT_EQ(FormatTimeUntil(json(nullptr), Now()), "-");
  EXPECT_EQ(FormatTimeUntil(json("soon"), Now()), "-");
}

}  // namespace
}  // namespace dlab
