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
    "id": 12, "name": "digits", "state": "RUNNING", "reason": "started",
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

TEST(JobFormatTest, TableHasOneRowPerJobAndTruncatesLongReasons) {
  json queued = Job();
  queued["id"] = 13;
  queued["state"] = "QUEUED";
  queued["reason"] = std::string(100, 'r');
  std::string table = FormatJobTable(json::array({queued, Job()}), Now());
  EXPECT_EQ(table,
            "ID  NAME    STATE    AGE  GPUS  REASON\n"
            "13  digits  QUEUED   4m   1     " +
                std::string(45, 'r') +
                "...\n"
                "12  digits  RUNNING  4m   1     started\n");
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

}  // namespace
}  // namespace dlab
