#include "api/metrics_routes.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/testing/http_client.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

using Reply = testing::ClientReply;

// Sends JSON bodies (without a 100-continue round trip) and the Authorization header when given.
class Client {
 public:
  explicit Client(int port) : client_(port) {}

  Reply Send(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& token = "") {
    testing::ClientRequest request{.method = method,
                                   .path = path,
                                   .body = body,
                                   .headers = {"Content-Type: application/json", "Expect:"},
                                   .timeout_ms = 30000};
    if (!token.empty()) request.headers.push_back(absl::StrCat("Authorization: ", token));
    return client_.Send(request);
  }

 private:
  testing::Client client_;
};

std::string Bearer(int64_t job_id) { return absl::StrCat("Bearer token-", job_id); }

class MetricsRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::OpenSqlite((temp_.path() / "dlab.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto metrics = MetricsStore::OpenSqlite((temp_.path() / "metrics.db").string());
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_ = *std::move(metrics);
    job_ = CreateJob();
    other_job_ = CreateJob();
    StartServer(16 << 20);
  }

  void StartServer(size_t max_report_bytes) {
    server_.reset();
    Router router;
    RegisterMetricsRoutes(
        {.store = store_.get(),
         .metrics = metrics_.get(),
         .verify_job_token =
             [](int64_t job_id, std::string_view token) {
               return token == absl::StrCat("token-", job_id);
             },
         // Reads as a user who sees every job (the AuthGate's checks have
         // their own tests).
         .authorize_user = [](const HttpRequest&, int64_t) { return absl::OkStatus(); },
         .max_report_bytes = max_report_bytes,
         .on_checkpoint =
             [this](int64_t job_id) {
               std::lock_guard lock(checkpointed_mu_);
               checkpointed_.push_back(job_id);
             }},
        &router);
    auto server = HttpServer::Start({.port = 0}, std::move(router));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = std::make_unique<Client>(server_->port());
  }

  std::vector<int64_t> Checkpointed() {
    std::lock_guard lock(checkpointed_mu_);
    return checkpointed_;
  }

  int64_t CreateJob() {
    NewJob job;
    job.spec.name = "train";
    job.spec.command = {"true"};
    job.submit_time = absl::Now();
    auto created = store_->CreateJob(job);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->job.id : 0;
  }

  std::string MetricsPath(int64_t id, const std::string& query = "") const {
    return absl::StrCat("/api/v1/jobs/", id, "/metrics", query);
  }
  std::string CheckpointsPath(int64_t id) const {
    return absl::StrCat("/api/v1/jobs/", id, "/checkpoints");
  }
  Reply PostMetrics(const json& body) {
    return client_->Send("POST", MetricsPath(job_), body.dump(), Bearer(job_));
  }

  testing::TempDir temp_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<MetricsStore> metrics_;
  std::mutex checkpointed_mu_;
  std::vector<int64_t> checkpointed_;  // on_checkpoint's calls (outlive the server)
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<Client> client_;
  int64_t job_ = 0;
  int64_t other_job_ = 0;
};

const json kOneReport = {{"reports", {{{"step", 1}, {"metrics", {{"loss", 1.5}}}}}}};

TEST_F(MetricsRoutesTest, WritesNeedTheJobsOwnToken) {
  for (const std::string& path : {MetricsPath(job_), CheckpointsPath(job_)}) {
    const std::string body =
        path == MetricsPath(job_) ? kOneReport.dump() : json{{"step", 1}, {"path", "/ckpt"}}.dump();
    for (const std::string& token : {std::string(), std::string("Bearer wrong"), Bearer(other_job_),
                                     std::string("Basic dG9rZW4="), std::string("Bearer ")}) {
      Reply reply = client_->Send("POST", path, body, token);
      EXPECT_EQ(reply.status, 401) << path << " with '" << token << "': " << reply.body;
      EXPECT_EQ(reply.Json()["error"]["code"], "UNAUTHENTICATED");
      EXPECT_THAT(reply.Message(), HasSubstr("Authorization"));
    }
  }
  EXPECT_EQ(client_->Send("POST", MetricsPath(job_), kOneReport.dump(), Bearer(job_)).status, 200);
  EXPECT_EQ(
      client_
          ->Send("POST", MetricsPath(job_), kOneReport.dump(), absl::StrCat("bearer  token-", job_))
          .status,
      200);
}

// A job's token lives as long as the job, and 5 minutes after it ends (the SDK's last flush).
TEST_F(MetricsRoutesTest, AJobsTokenExpiresAfterTheJobEnded) {
  auto end = [&](int64_t id, absl::Time when) {
    ASSERT_TRUE(store_
                    ->Transition({.job_id = id,
                                  .from = JobState::kQueued,
                                  .to = JobState::kCancelled,
                                  .reason = "cancelled",
                                  .time = when})
                    .ok());
  };
  end(job_, absl::Now() - absl::Minutes(1));
  EXPECT_EQ(client_->Send("POST", MetricsPath(job_), kOneReport.dump(), Bearer(job_)).status, 200);
  end(other_job_, absl::Now() - absl::Minutes(6));
  for (const std::string& path : {MetricsPath(other_job_), CheckpointsPath(other_job_)}) {
    Reply reply =
        client_->Send("POST", path,
                      path == MetricsPath(other_job_) ? kOneReport.dump()
                                                      : json{{"step", 1}, {"path", "/ckpt"}}.dump(),
                      Bearer(other_job_));
    EXPECT_EQ(reply.status, 401) << reply.body;
    EXPECT_THAT(reply.Message(), HasSubstr("its token expired 5m later"));
  }
}

TEST_F(MetricsRoutesTest, UnknownJobIs404) {
  for (const std::string& id : {std::string("999"), std::string("abc")}) {
    const std::string base = absl::StrCat("/api/v1/jobs/", id);
    EXPECT_EQ(
        client_->Send("POST", base + "/metrics", kOneReport.dump(), "Bearer token-999").status,
        404);
    EXPECT_EQ(client_->Send("GET", base + "/metrics").status, 404);
    EXPECT_EQ(client_->Send("POST", base + "/checkpoints", "{}", "Bearer token-999").status, 404);
    Reply reply = client_->Send("GET", base + "/checkpoints");
    EXPECT_EQ(reply.status, 404);
    EXPECT_EQ(reply.Json()["error"]["code"], "NOT_FOUND");
  }
}

TEST_F(MetricsRoutesTest, BadReportBodiesAre400NamingTheField) {
  const std::string long_name(257, 'x');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "body: not valid JSON"},
      {"[]", "body: must be an object"},
      {R"({"reprts": []})", "reprts: unknown field (known: attempt, reports)"},
      {R"({})", "reports: is required"},
      {R"({"reports": {}})", "reports: must be an array"},
      {R"({"attempt": -1, "reports": []})", "attempt: must be an integer >= 0"},
      {R"({"attempt": "2", "reports": []})", "attempt: must be an integer >= 0"},
      {R"({"reports": [1]})", "reports[0]: must be an object"},
      {R"({"reports": [{"metrics": {}}]})", "reports[0].step: is required"},
      {R"({"reports": [{"step": -1, "metrics": {}}]})", "reports[0].step: must be an integer >= 0"},
      {R"({"reports": [{"step": 1.5, "metrics": {}}]})", "reports[0].step: must be an integer"},
      {R"({"reports": [{"step": 1, "metrics": {}, "value": 1}]})",
       "reports[0].value: unknown field (known: step, time, metrics)"},
      {R"({"reports": [{"step": 1, "time": "now", "metrics": {}}]})",
       "reports[0].time: must be a number"},
      {R"({"reports": [{"step": 1}]})", "reports[0].metrics: is required"},
      {R"({"reports": [{"step": 1, "metrics": {"a": 1}}, {"step": 2, "metrics": {"loss": "x"}}]})",
       "reports[1].metrics.loss: must be a number"},
      {R"({"reports": [{"step": 1, "metrics": {"loss": true}}]})",
       "reports[0].metrics.loss: must be a number"},
      {R"({"reports": [{"step": 1, "metrics": {"loss": 1e999}}]})",
       "body: number overflow parsing '1e999'"},
      {R"({"reports": [{"step": 1, "metrics": {"loss": 1}})", "body: not valid JSON at byte 49"},
      {R"({"reports": [{"step": 1, "metrics": {"": 1}}]})",
       "reports[0].metrics: metric names must not be empty"},
      {absl::StrCat(R"({"reports": [{"step": 1, "metrics": {")", long_name, R"(": 1}}]})"),
       "longer than 256 bytes"},
  };
  for (const auto& [body, message] : cases) {
    Reply reply = client_->Send("POST", MetricsPath(job_), body, Bearer(job_));
    EXPECT_EQ(reply.status, 400) << body << ": " << reply.body;
    EXPECT_EQ(reply.Json()["error"]["code"], "INVALID_ARGUMENT") << body;
    EXPECT_THAT(reply.Message(), HasSubstr(message)) << body;
  }
  json too_many = {{"reports", json::array()}};
  for (int i = 0; i < 100'001; ++i) too_many["reports"].push_back(json::object());
  Reply reply = PostMetrics(too_many);
  EXPECT_EQ(reply.status, 400);
  EXPECT_THAT(reply.Message(), HasSubstr("reports: at most 100000 reports per request"));
  // Nothing of a rejected request was stored.
  auto series = metrics_->Series(job_, {}, 0);
  ASSERT_TRUE(series.ok());
  EXPECT_TRUE(series->empty());
}

TEST_F(MetricsRoutesTest, OversizedReportBodyIs413) {
  StartServer(1024);
  json body = {{"reports", json::array()}};
  for (int i = 0; i < 100; ++i)
    body["reports"].push_back({{"step", i}, {"metrics", {{"loss", i}}}});
  EXPECT_EQ(PostMetrics(body).status, 413);
  EXPECT_EQ(PostMetrics(kOneReport).status, 200);
}

TEST_F(MetricsRoutesTest, ReportsRoundTrip) {
  Reply reply = PostMetrics(
      {{"attempt", 1},
       {"reports",
        {{{"step", 10}, {"time", 1763800000.5}, {"metrics", {{"loss", 0.5}, {"accuracy", 0.9}}}},
         {{"step", 20}, {"time", 1763800010.5}, {"metrics", {{"loss", 0.25}}}},
         {{"step", 30}, {"metrics", {{"lr", 0.001}}}}}}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json(), (json{{"accepted", 4}}));
  // A resumed attempt redoes step 20: its value replaces the first.
  reply = PostMetrics(
      {{"attempt", 2},
       {"reports", {{{"step", 20}, {"time", 1763800020.0}, {"metrics", {{"loss", 0.3}}}}}}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json(), (json{{"accepted", 1}}));

  reply = client_->Send("GET", MetricsPath(job_, "?name=loss,accuracy"));
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json(), json::parse(R"({"job_id": )" + std::to_string(job_) + R"(, "series": [
              {"name": "accuracy", "count": 1, "points": [[10, 1763800000.5, 0.9]],
               "latest": {"step": 10, "time": 1763800000.5, "value": 0.9}},
              {"name": "loss", "count": 2,
               "points": [[10, 1763800000.5, 0.5], [20, 1763800020.0, 0.3]],
               "latest": {"step": 20, "time": 1763800020.0, "value": 0.3}}]})"));

  reply = client_->Send("GET", MetricsPath(job_));
  ASSERT_EQ(reply.status, 200);
  json all = reply.Json();
  ASSERT_EQ(all["series"].size(), 3u);
  EXPECT_EQ(all["series"][2]["name"], "lr");
  const double lr_time = all["series"][2]["latest"]["time"].get<double>();
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_NEAR(lr_time, now, 60);  // time defaults to when the server received it

  reply = client_->Send("GET", MetricsPath(job_, "?name=lr&name=missing"));
  ASSERT_EQ(reply.status, 200);
  ASSERT_EQ(reply.Json()["series"].size(), 1u);
  EXPECT_EQ(reply.Json()["series"][0]["name"], "lr");
  EXPECT_EQ(client_->Send("GET", MetricsPath(other_job_)).Json(),
            (json{{"job_id", other_job_}, {"series", json::array()}}));
}

TEST_F(MetricsRoutesTest, MaxPointsDownsamples) {
  json body = {{"reports", json::array()}};
  for (int step = 0; step < 5000; ++step) {
    body["reports"].push_back({{"step", step},
                               {"time", 1e9 + step},
                               {"metrics", {{"loss", step == 2500 ? 100.0 : 1.0}}}});
  }
  ASSERT_EQ(PostMetrics(body).status, 200);
  Reply reply = client_->Send("GET", MetricsPath(job_, "?name=loss&max_points=100"));
  ASSERT_EQ(reply.status, 200) << reply.body;
  const json got = reply.Json();
  const json& loss = got["series"][0];
  EXPECT_EQ(loss["count"], 5000);
  const json& points = loss["points"];
  EXPECT_LE(points.size(), 100u);
  EXPECT_GE(points.size(), 50u);
  EXPECT_EQ(points.front()[0], 0);
  EXPECT_EQ(points.back()[0], 4999);
  bool spike = false;
  for (const json& p : points) spike = spike || p[2] == 100.0;
  EXPECT_TRUE(spike) << "the spike at step 2500 survives downsampling";
  EXPECT_EQ(loss["latest"]["step"], 4999);
  // The default is 1000 points.
  EXPECT_EQ(client_->Send("GET", MetricsPath(job_)).Json()["series"][0]["points"].size(), 1000u);

  for (std::string bad : {"0", "10001", "x", "-5"}) {
    reply = client_->Send("GET", MetricsPath(job_, "?max_points=" + bad));
    EXPECT_EQ(reply.status, 400) << bad;
    EXPECT_THAT(reply.Message(), HasSubstr("max_points: must be an integer between 1 and 10000"));
  }
}

TEST_F(MetricsRoutesTest, CheckpointsRoundTrip) {
  Reply reply = client_->Send(
      "POST", CheckpointsPath(job_),
      json{{"attempt", 2}, {"step", 100}, {"path", "/data/ckpt/100"}, {"metrics", {{"loss", 0.3}}}}
          .dump(),
      Bearer(job_));
  ASSERT_EQ(reply.status, 201) << reply.body;
  json first = reply.Json();
  EXPECT_GT(first["id"].get<int64_t>(), 0);
  EXPECT_EQ(first["job_id"], job_);
  EXPECT_EQ(first["attempt"], 2);
  EXPECT_EQ(first["step"], 100);
  EXPECT_EQ(first["path"], "/data/ckpt/100");
  EXPECT_EQ(first["metrics"], (json{{"loss", 0.3}}));
  const std::string time = first["time"].get<std::string>();
  absl::Time parsed;
  std::string error;
  EXPECT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E3SZ", time, &parsed, &error)) << time << error;
  EXPECT_EQ(time.size(), 24u) << time;  // milliseconds, UTC
  EXPECT_LT(absl::AbsDuration(parsed - absl::Now()), absl::Minutes(1)) << time;
  reply = client_->Send("POST", CheckpointsPath(job_),
                        json{{"step", 50}, {"path", "/data/ckpt/50"}}.dump(), Bearer(job_));
  ASSERT_EQ(reply.status, 201) << reply.body;
  json second = reply.Json();
  EXPECT_EQ(second["attempt"], 0);
  EXPECT_EQ(second["metrics"], json::object());

  // The scheduler hears of each (so that preempting the job loses only the work since).
  EXPECT_EQ(Checkpointed(), (std::vector<int64_t>{job_, job_}));

  reply = client_->Send("GET", CheckpointsPath(job_));
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.Json(), (json{{"checkpoints", {first, second}}}));
  EXPECT_EQ(client_->Send("GET", CheckpointsPath(other_job_)).Json(),
            (json{{"checkpoints", json::array()}}));
}

TEST_F(MetricsRoutesTest, BadCheckpointBodiesAre400NamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "body: not valid JSON"},
      {R"({"path": "/c"})", "step: is required"},
      {R"({"step": -1, "path": "/c"})", "step: must be an integer >= 0"},
      {R"({"step": 1})", "path: is required"},
      {R"({"step": 1, "path": 7})", "path: must be a string"},
      {R"({"step": 1, "path": "ckpt/1"})", "path: must be an absolute path, got 'ckpt/1'"},
      {R"({"step": 1, "path": "/c", "metrics": [1]})", "metrics: must be an object"},
      {R"({"step": 1, "path": "/c", "metrics": {"loss": "low"}})",
       "metrics.loss: must be a number"},
      {R"({"step": 1, "path": "/c", "attempt": 1.5})", "attempt: must be an integer >= 0"},
      {R"({"step": 1, "path": "/c", "dir": "/d"})",
       "dir: unknown field (known: attempt, step, path, metrics)"},
  };
  for (const auto& [body, message] : cases) {
    Reply reply = client_->Send("POST", CheckpointsPath(job_), body, Bearer(job_));
    EXPECT_EQ(reply.status, 400) << body << ": " << reply.body;
    EXPECT_THAT(reply.Message(), HasSubstr(message)) << body;
  }
  EXPECT_TRUE(Checkpointed().empty());  // nothing recorded, nobody told
}

// system/ series are what dlab measures about a job (its GPU utilisation): a job cannot write
// them, and they are read like the job's own metrics.
TEST_F(MetricsRoutesTest, SystemMetricNamesAreReservedForDlab) {
  Reply reply = PostMetrics(
      {{"reports",
        {{{"step", 1}, {"metrics", {{"loss", 1}, {"system/gpu_utilization_pct", 99}}}}}}});
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_EQ(reply.Message(),
            "reports[0].metrics.system/gpu_utilization_pct: metric names starting with system/ "
            "are reserved for what dlab measures itself");
  reply = client_->Send("POST", CheckpointsPath(job_),
                        json{{"step", 1}, {"path", "/c"}, {"metrics", {{"system/x", 1}}}}.dump(),
                        Bearer(job_));
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_THAT(reply.Message(), HasSubstr("metrics.system/x: metric names starting with system/"));
  // Names that merely contain it are the job's.
  EXPECT_EQ(
      PostMetrics({{"reports", {{{"step", 1}, {"metrics", {{"my/system/loss", 2}}}}}}}).status,
      200);

  ASSERT_TRUE(
      metrics_
          ->Append(job_, 1,
                   {{.step = 30, .time = 1.0e9, .values = {{"system/gpu_utilization_pct", 87}}}})
          .ok());
  reply = client_->Send("GET", MetricsPath(job_));
  ASSERT_EQ(reply.status, 200) << reply.body;
  json series = reply.Json()["series"];
  ASSERT_EQ(series.size(), 2u) << series;
  EXPECT_EQ(series[0]["name"], "my/system/loss");
  EXPECT_EQ(series[1]["name"], "system/gpu_utilization_pct");
  EXPECT_EQ(series[1]["points"], (json{{30, 1.0e9, 87}}));
}

// Prints the ingestion rate through the real HTTP server (not asserted: the machine is shared):
// POSTs of 1,000 reports with 3 metrics each, as a training loop reporting in batches sends.
TEST_F(MetricsRoutesTest, IngestionRate) {
  constexpr int kRequests = 50;
  constexpr int kReports = 1000;
  std::vector<std::string> bodies;
  for (int r = 0; r < kRequests; ++r) {
    json reports = json::array();
    for (int i = 0; i < kReports; ++i) {
      const int step = r * kReports + i;
      reports.push_back({{"step", step},
                         {"time", 1763800000.0 + step * 0.01},
                         {"metrics",
                          {{"loss", 1.0 / (1 + step)},
                           {"accuracy", 0.5 + 0.0001 * i},
                           {"learning_rate", 0.001}}}});
    }
    bodies.push_back(json{{"attempt", 1}, {"reports", std::move(reports)}}.dump());
  }
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& body : bodies) {
    Reply reply = client_->Send("POST", MetricsPath(job_), body, Bearer(job_));
    ASSERT_EQ(reply.status, 200) << reply.body;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "POST /api/v1/jobs/{id}/metrics: %.0f reports/s (%d requests of %d reports x 3 metrics, "
      "%zu bytes each, %.2f ms per request)\n",
      kRequests * kReports / seconds, kRequests, kReports, bodies[0].size(),
      1000 * seconds / kRequests);
  auto series = metrics_->Series(job_, {"loss"}, 1);
  ASSERT_TRUE(series.ok());
  EXPECT_EQ((*series)[0].count, kRequests * kReports);
}

}  // namespace
}  // namespace dlab
