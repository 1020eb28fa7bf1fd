#include "sim/trace.h"

#include <gtest/gtest.h>

namespace dlab::sim {
namespace {

TEST(ParseTraceTest, ReadsAGenericTraceInSubmitOrder) {
  auto trace = ParseTrace(
      "job_id,submit_s,num_gpus,duration_s,tenant,priority\n"
      "b,20,2,30,alice,1\n"
      "a,10,4,100.5,bob,\n"
      "c,20,0,5,,\n",
      "t.csv");
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->format, TraceFormat::kGeneric);
  ASSERT_EQ(trace->jobs.size(), 3u);
  EXPECT_EQ(trace->jobs[0].id, "a");
  EXPECT_EQ(trace->jobs[0].duration_s, 100.5);
  EXPECT_EQ(trace->jobs[0].tenant, "bob");
  EXPECT_EQ(trace->jobs[1].id, "b");  // equal submit times keep the file's order
  EXPECT_EQ(trace->jobs[1].priority, 1);
  EXPECT_EQ(trace->jobs[2].id, "c");
  EXPECT_EQ(trace->jobs[2].tenant, "default");
  EXPECT_FALSE(trace->jobs[2].cpu_millis.has_value());
}

TEST(ParseTraceTest, ReadsPhilly) {
  auto trace = ParseTrace(
      "job_id,submit_s,num_gpus,duration_s,gpu_type,vc\n"
      "0,0,8,2240194,,7f04ca\n",
      "philly.csv");
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->format, TraceFormat::kPhilly);
  EXPECT_EQ(trace->jobs[0].tenant, "7f04ca");
  EXPECT_EQ(trace->jobs[0].gpus, 8);
}

TEST(ParseTraceTest, ReadsAlibabaWithQosFractionalGpusAndPendingPods) {
  auto trace = ParseTrace(
      "job_id,submit_s,num_gpus,duration_s,gpu_type,gpu_milli,cpu_milli,memory_mib,qos,phase,"
      "queue_s\n"
      "p0,0,1,12537496.0,,1000,12000,16384,LS,Running,0.0\n"
      "p1,5,1,100.0,V100M16,460,6000,12288,BE,Failed,0.0\n"
      "p2,6,0,50.0,,0,20000,65536,Guaranteed,Succeeded,2.0\n"
      "p3,7,8,,,1000,64000,65536,Burstable,Pending,\n",
      "ali.csv");
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->format, TraceFormat::kAlibabaV2023);
  const auto& jobs = trace->jobs;
  EXPECT_EQ(jobs[0].priority, 2);
  EXPECT_EQ(jobs[0].cpu_millis, 12000);
  EXPECT_EQ(jobs[0].memory_bytes, int64_t{16384} << 20);
  EXPECT_FALSE(jobs[0].fractional_gpu);
  EXPECT_EQ(jobs[1].gpus, 1);
  EXPECT_TRUE(jobs[1].fractional_gpu);
  EXPECT_EQ(jobs[1].gpu_type, "V100M16");
  EXPECT_EQ(jobs[1].priority, 0);
  EXPECT_EQ(jobs[2].gpus, 0);
  EXPECT_EQ(jobs[2].priority, 3);
  EXPECT_FALSE(jobs[3].duration_s.has_value());
  EXPECT_EQ(jobs[3].priority, 1);
}

TEST(ParseTraceTest, ErrorsNameTheLineAndTheColumn) {
  auto bad_number = ParseTrace(
      "job_id,submit_s,num_gpus,duration_s\n"
      "1,0,1,10\n"
      "\n"
      "2,5,two,10\n",
      "t.csv");
  EXPECT_EQ(bad_number.status().message(), "t.csv:4: num_gpus: expected a whole number, got 'two'");
  auto short_row = ParseTrace("job_id,submit_s,num_gpus,duration_s\n1,0,1\n", "t.csv");
  EXPECT_EQ(short_row.status().message(), "t.csv:2: expected 4 fields (4 columns), got 3");
  auto negative = ParseTrace("job_id,submit_s,num_gpus,duration_s\n1,0,-1,5\n", "t.csv");
  EXPECT_EQ(negative.status().message(), "t.csv:2: num_gpus: must be 0 or more, got -1");
  auto bad_qos =
      ParseTrace("job_id,submit_s,num_gpus,duration_s,gpu_milli,qos\n1,0,1,5,1000,Gold\n", "a.csv");
  EXPECT_EQ(bad_qos.status().message(),
            "a.csv:2: qos: expected Guaranteed, LS, Burstable or BE, got 'Gold'");
  auto bad_time = ParseTrace("job_id,submit_s,num_gpus,duration_s\n1,soon,1,5\n", "t.csv");
  EXPECT_EQ(bad_time.status().message(), "t.csv:2: submit_s: expected a number, got 'soon'");
  auto early = ParseTrace("job_id,submit_s,num_gpus,duration_s\n1,-5,1,5\n", "t.csv");
  EXPECT_EQ(early.status().message(), "t.csv:2: submit_s: must be 0 or more, got -5");
  auto twice =
      ParseTrace("job_id,submit_s,num_gpus,duration_s\na,0,1,5\nb,1,1,5\na,2,1,5\n", "t.csv");
  EXPECT_EQ(twice.status().message(), "t.csv:4: job_id: 'a' again (first on line 2)");
  auto unnamed = ParseTrace("job_id,submit_s,num_gpus,duration_s\n,0,1,5\n", "t.csv");
  EXPECT_EQ(unnamed.status().message(), "t.csv:2: job_id: empty");
}

TEST(ParseTraceTest, OnlyAlibabaPodsMayLackADuration) {
  EXPECT_EQ(ParseTrace("job_id,submit_s,num_gpus,duration_s\n1,0,1,\n", "t.csv").status().message(),
            "t.csv:2: duration_s: empty (every job of a trace needs its run time)");
  EXPECT_EQ(ParseTrace("job_id,submit_s,num_gpus,duration_s,gpu_type,vc\n1,0,1,,,v\n", "p.csv")
                .status()
                .message(),
            "p.csv:2: duration_s: empty (every job of a trace needs its run time)");
}

TEST(ParseTraceTest, SkipsAByteOrderMark) {
  auto trace = ParseTrace("\xEF\xBB\xBFjob_id,submit_s,num_gpus,duration_s\nq,0,1,5\n", "t.csv");
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->jobs.at(0).id, "q");
}

TEST(ParseTraceTest, RefusesFilesThatAreNoTrace) {
  EXPECT_EQ(ParseTrace("job_id,submit_s,num_gpus\n1,0,1\n", "t.csv").status().message(),
            "t.csv:1: no column duration_s (a trace has at least "
            "job_id,submit_s,num_gpus,duration_s)");
  EXPECT_EQ(ParseTrace("sn,cpu_milli,memory_mib,gpu,model\n", "nodes.csv").status().message(),
            "nodes.csv:1: this is a node file (sn,...,model), not a trace; pass it to --cluster");
  EXPECT_EQ(ParseTrace("", "empty.csv").status().message(),
            "empty.csv: empty file, no header line");
  EXPECT_TRUE(absl::IsNotFound(LoadTrace("/nonexistent/trace.csv").status()));
}

Trace FiveJobs() {
  return *ParseTrace(
      "job_id,submit_s,num_gpus,duration_s\n"
      "a,100,1,1\nb,200,1,1\nc,300,1,1\nd,400,1,1\ne,500,1,1\n",
      "t.csv");
}

std::vector<std::string> Ids(const std::vector<TraceJob>& jobs) {
  std::vector<std::string> ids;
  for (const TraceJob& job : jobs) ids.push_back(job.id);
  return ids;
}

TEST(SelectJobsTest, ByRangeAndByWindow) {
  Trace trace = FiveJobs();
  EXPECT_EQ(Ids(SelectJobs(trace, *ParseJobRange("1:2"))), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Ids(SelectJobs(trace, *ParseJobRange("3:10"))), (std::vector<std::string>{"d", "e"}));
  EXPECT_TRUE(SelectJobs(trace, *ParseJobRange("9:1")).empty());
  // [200, 400): 400 is out.
  EXPECT_EQ(Ids(SelectJobs(trace, *ParseWindow("200:400"))), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(SelectJobs(trace, JobSelection{}).size(), 5u);
}

TEST(SelectJobsTest, RefusesMalformedRangesAndWindows) {
  for (const char* bad : {"5", "a:3", "0:0", "-1:3", "1:2:3", ""}) {
    EXPECT_EQ(ParseJobRange(bad).status().message(),
              std::string("--jobs: expected FIRST:COUNT (whole numbers, COUNT at least 1), got '") +
                  bad + "'")
        << bad;
  }
  for (const char* bad : {"10:5", "5:5", "x:10", "10", "-5:10"}) {
    EXPECT_FALSE(ParseWindow(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseWindow("10:5").status().message(),
            "--window: expected FROM_S:TO_S (seconds of the trace, FROM_S < TO_S), got '10:5'");
}

}  // namespace
}  // namespace dlab::sim
