#include "api/http_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "api/testing/http_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

using testing::Client;
using testing::ClientReply;
using testing::ClientRequest;

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

std::unique_ptr<HttpServer> StartServer(Router router, HttpServerOptions options = {}) {
  options.port = 0;
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(std::move(options), std::move(router));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

HttpResponse Text(std::string body) {
  HttpResponse response;
  response.content_type = "text/plain";
  response.body = std::move(body);
  return response;
}

HttpResponse EventStream(std::shared_ptr<StreamSource> source) {
  HttpResponse response;
  response.content_type = "text/event-stream";
  response.stream = std::move(source);
  response.stream_poll = absl::Milliseconds(5);
  return response;
}

struct RawExchange {
  std::string received;
  bool closed_by_server = false;  // false: we gave up waiting
};

// Sends raw bytes on a fresh connection and reads until the server closes it.
RawExchange SendRaw(int port, std::string_view bytes, absl::Duration wait = absl::Seconds(5)) {
  RawExchange exchange;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout = absl::ToTimeval(wait);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        exchange.closed_by_server = n == 0;
        break;
      }
      exchange.received.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return exchange;
}

TEST(HttpStatusTest, CanonicalCodesMapToHttpStatuses) {
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kFailedPrecondition), 409);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDataLoss), 500);

  HttpResponse response = ErrorResponse(absl::NotFoundError("job 7 does not exist"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(
      nlohmann::json::parse(response.body),
      (nlohmann::json{{"error", {{"code", "NOT_FOUND"}, {"message", "job 7 does not exist"}}}}));
}

TEST(RouterDeathTest, DuplicateRouteCrashesNamingIt) {
  Router router;
  router.Add("GET", "/api/v1/jobs/{id}", [](const HttpRequest&) { return Text(""); });
  EXPECT_DEATH(router.Add("GET", "/api/v1/jobs/{job}", [](const HttpRequest&) { return Text(""); }),
               "duplicate HTTP route GET /api/v1/jobs/\\{job\\}");
}

TEST(HttpServerTest, RoutesWithPathParamsAndDecodedQuery) {
  Router router;
  router.Add("GET", "/api/v1/jobs/{id}/logs", [](const HttpRequest& request) {
    nlohmann::json body = {{"id", request.path_params.at("id")},
                           {"path", request.path},
                           {"q", request.Query("q").value_or("-")},
                           {"tail", request.Query("tail").value_or("-")},
                           {"agent", request.Header("User-Agent").value_or("-")}};
    return Text(body.dump());
  });
  router.Add("GET", "/api/v1/jobs/search", [](const HttpRequest&) { return Text("search"); });
  router.Add("GET", "/api/v1/jobs/{id}", [](const HttpRequest&) { return Text("job"); });
  std::unique_ptr<HttpServer> server = StartServer(std::move(router));
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->port(), 0);
  Client client(server->port());

  ClientReply reply = client.Send(
      {.path = "/api/v1/jobs/my%20job/logs/?q=a+b%26c&tail=10", .headers = {"User-Agent: t1"}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json(), (nlohmann::json{{"id", "my job"},
                                          {"path", "/api/v1/jobs/my job/logs/"},
                                          {"q", "a b&c"},
                                          {"tail", "10"},
                                          {"agent", "t1"}}));
  EXPECT_EQ(client.Get("/api/v1/jobs/search").body, "search");
  EXPECT_EQ(client.Get("/api/v1/jobs/12").body, "job");
}

TEST(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  Router router;
  router.Add("GET", "/api/v1/jobs", [](const HttpRequest&) { return Text("[]"); });
  std::unique_ptr<HttpServer> server = StartServer(std::move(router));
  ASSERT_NE(server, nullptr);
  Client client(server->port());

  ClientReply missing = client.Get("/api/v1/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.headers["content-type"], "application/json");
  EXPECT_EQ(missing.Json()["error"]["code"], "NOT_FOUND");

  ClientReply wrong_method = client.Send({.method = "DELETE", .path = "/api/v1/jobs"});
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.Json()["error"]["code"], "METHOD_NOT_ALLOWED");
  EXPECT_THAT(wrong_method.Json()["error"]["message"].get<std::string>(), HasSubstr("DELETE"));

  EXPECT_EQ(client.Get("/api/v1/jobs").status, 200);
}

TEST(HttpServerTest, OversizedBodyIs413BeforeTheHandlerRuns) {
  std::atomic<int> calls = 0;
  Router router;
  router.Add(
      "POST", "/upload",
      [&](const HttpRequest&) {
        ++calls;
        return Text("ok");
      },
      RouteOptions{.max_body_bytes = 1024});
  std::unique_ptr<HttpServer> server = StartServer(std::move(router));
  ASSERT_NE(server, nullptr);
  const std::string body(200 * 1024, 'x');

  for (const std::string& variant : {std::string("Expect:"), std::string("Expect: 100-continue"),
                                     std::string("Transfer-Encoding: chunked")}) {
    SCOPED_TRACE(variant);
    Client client(server->port());
    ClientReply reply =
        client.Send({.method = "POST", .path = "/upload", .body = body, .headers = {variant}});
    EXPECT_EQ(reply.status, 413) << curl_easy_strerror(reply.code);
    EXPECT_EQ(reply.Json()["error"]["code"], "PAYLOAD_TOO_LARGE");
  }
  EXPECT_EQ(calls, 0);

  Client client(server->port());
  EXPECT_EQ(client.Send({.method = "POST", .path = "/upload", .body = "small"}).status, 200);
}

TEST(HttpServerTest, LargeBodyRoundTripsOnARouteThatAllowsIt) {
  Router router;
  router.Add(
      "POST", "/echo", [](const HttpRequest& request) { return Text(request.body); },
      RouteOptions{.max_body_bytes = 8 << 20});
  std::unique_ptr<HttpServer> server = StartServer(std::move(router));
  ASSERT_NE(server, nullptr);
  std::string body(5 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i * 7 % 26);

  Client client(server->port());
  ClientReply reply = client.Send({.method = "POST", .path = "/echo", .body = body});
  EXPECT_EQ(reply.status, 200) << curl_easy_strerror(reply.code);
  EXPECT_TRUE(reply.body == body) << "echoed " << reply.body.size() << " bytes";
}

TEST(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  Router router;
  router.Add("GET", "/whoami", [](const HttpRequest& request) { return Text(request.remote); });
  std::unique_ptr<HttpServer> server = StartServer(std::move(router));
  ASSERT_NE(server, nullptr);
  Client client(server->port());

  const std::string first = client.Get("/whoami").body;
  EXPECT_THAT(first, StartsWith("127.0.0.1:"));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.Get("/whoami").body, first);
}

TEST(HttpServerTest, HeadOnGetRouteSendsLengthButNoBody) {
  Router router;
  router.Add("GET", "/thing", [](const HttpRequest&) { return Text("hello world"); });
  std::unique_ptr<HttpServer> server = StartServer(std::move(router));
  ASSERT_NE(server, nullptr);
  Client client(server->port());

  ClientReply head = client.Send({.method = "HEAD", .path = "/thing"});
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], "11");
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(client.Get("/thing").body, "hello world");  // nothing stray left on the connection
}

TEST(HttpServerTest, HandlerExceptionIs500WithItsMessage) {
  Router router;
  router.Add("GET", "/boom",
             [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("kaboom"); });
  std::unique_ptr<HttpServer> server = StartServer(std::move(router));
  ASSERT_NE(server, nullptr);
  Client client(server->port());

  ClientReply reply = client.Get("/boom");
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.Json()["error"]["code"], "INTERNAL");
  EXPECT_THAT(reply.Json()["error"]["message"].get<std::string>(), HasSubstr("kaboom"));
}

TEST(HttpServerTest, MalformedRequestIs400AndCloses) {
  std::unique_ptr<HttpServer> server = StartServer(Router());
  ASSERT_NE(server, nullptr);

  RawExchange exchange = SendRaw(server->port(), "NOT A REQUEST\x01\r\n\r\n");
  EXPECT_THAT(exchange.received, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(exchange.received, HasSubstr("BAD_REQUEST"));
  EXPECT_TRUE(exchange.closed_by_server);
}

TEST(HttpServerTest, IdleConnectionIsClosed) {
  HttpServerOptions options;
  options.idle_timeout = absl::Milliseconds(200);
  std::unique_ptr<HttpServer> server = StartServer(Router(), options);
  ASSERT_NE(server, nullptr);

  RawExchange exchange = SendRaw(server->port(), "");
  EXPECT_TRUE(exchange.closed_by_server);
  EXPECT_EQ(exchange.received, "");
}

TEST(HttpServerTest, OnResponseSeesEachRequestAndStatus) {
  std::mutex mu;
  std::vector<std::string> seen;
  HttpServerOptions options;
  options.on_response = [&](const HttpRequest& request, int status, absl::Duration elapsed) {
    std::lock_guard lock(mu);
    seen.push_back(absl::StrCat(request.method, " ", request.path, " ", status));
    EXPECT_GE(elapsed, absl::ZeroDuration());
  };
  Router router;
  router.Add("GET", "/ok", [](const HttpRequest&) { return Text("ok"); });
  std::unique_ptr<HttpServer> server = StartServer(std::move(router), options);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  client.Get("/ok");
  client.Get("/missing");

  // Reported after the response is written, so possibly after the client has it.
  const std::vector<std::string> expected = {"GET /ok 200", "GET /missing 404"};
  EXPECT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return seen == expected;
  }));
}

// Emits "first", then nothing until the client has received it, then "second" and ends: the
// test only finishes if each chunk is flushed as soon as it is produced.
class HandshakeSource final : public StreamSource {
 public:
  explicit HandshakeSource(std::atomic<bool>& first_received) : first_received_(first_received) {}
  StreamChunk Next() override {
    if (!sent_first_) {
      sent_first_ = true;
      return {.data = "data: first\n\n"};
    }
    if (!first_received_) return {};
    return {.data = "data: second\n\n", .done = true};
  }

 private:
  std::atomic<bool>& first_received_;
  bool sent_first_ = false;
};

TEST(HttpServerTest, StreamChunksArriveInOrderAndEndWhenTheSourceIsDone) {
  std::atomic<bool> first_received = false;
  Router router;
  router.Add("GET", "/events", [&](const HttpRequest&) {
    return EventStream(std::make_shared<HandshakeSource>(first_received));
  });
  router.Add("GET", "/after", [](const HttpRequest&) { return Text("after"); });
  std::unique_ptr<HttpServer> server = StartServer(std::move(router));
  ASSERT_NE(server, nullptr);
  Client client(server->port());

  ClientReply reply = client.Send({.path = "/events", .on_data = [&](std::string_view data) {
                                     if (data.find("first") != data.npos) first_received = true;
                                     return true;
                                   }});
  EXPECT_EQ(reply.code, CURLE_OK) << curl_easy_strerror(reply.code);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "data: first\n\ndata: second\n\n");
  EXPECT_EQ(reply.headers["content-type"], "text/event-stream");
  EXPECT_EQ(reply.headers["cache-control"], "no-cache");
  EXPECT_EQ(reply.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(client.Get("/after").body, "after");  // the connection is reusable
}

// Sends one chunk and then nothing, forever; records when it is dropped.
class EndlessSource final : public StreamSource {
 public:
  explicit EndlessSource(std::atomic<bool>& dropped) : dropped_(dropped) {}
  ~EndlessSource() override { dropped_ = true; }
  StreamChunk Next() override {
    if (sent_) return {};
    sent_ = true;
    return {.data = "data: hello\n\n"};
  }

 private:
  std::atomic<bool>& dropped_;
  bool sent_ = false;
};

Router EndlessRouter(std::atomic<bool>& dropped) {
  Router router;
  router.Add("GET", "/endless", [&](const HttpRequest&) {
    return EventStream(std::make_shared<EndlessSource>(dropped));
  });
  router.Add("GET", "/ok", [](const HttpRequest&) { return Text("ok"); });
  return router;
}

TEST(HttpServerTest, ClientHangingUpOnEndlessStreamDropsItAndServerKeepsServing) {
  std::atomic<bool> dropped = false;
  HttpServerOptions options;
  options.threads = 1;  // a wedged thread would show as the follow-up request hanging
  std::unique_ptr<HttpServer> server = StartServer(EndlessRouter(dropped), options);
  ASSERT_NE(server, nullptr);

  {
    Client client(server->port());
    ClientReply reply = client.Send({.path = "/endless", .on_data = [](std::string_view) {
                                       return false;  // hang up after the first chunk
                                     }});
    EXPECT_EQ(reply.code, CURLE_WRITE_ERROR);
  }
  EXPECT_TRUE(WaitFor([&] { return dropped.load(); }));
  Client client(server->port());
  EXPECT_EQ(client.Get("/ok").body, "ok");
}

TEST(HttpServerTest, StopEndsOpenStreams) {
  std::atomic<bool> dropped = false;
  std::unique_ptr<HttpServer> server = StartServer(EndlessRouter(dropped));
  ASSERT_NE(server, nullptr);
  std::atomic<bool> streaming = false;
  ClientReply reply;
  std::thread reader([&, port = server->port()] {
    Client client(port);
    reply = client.Send({.path = "/endless", .on_data = [&](std::string_view) {
                           streaming = true;
                           return true;
                         }});
  });
  ASSERT_TRUE(WaitFor([&] { return streaming.load(); }));

  const absl::Time start = absl::Now();
  server->Stop();
  reader.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // well before curl's own timeout
  EXPECT_NE(reply.code, CURLE_OK);
  EXPECT_NE(reply.code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_TRUE(dropped);
  server->Stop();  // a second Stop is harmless
}

TEST(HttpServerTest, SecondServerOnTheSamePortIsUnavailable) {
  std::unique_ptr<HttpServer> first = StartServer(Router());
  ASSERT_NE(first, nullptr);

  HttpServerOptions options;
  options.port = first->port();
  absl::StatusOr<std::unique_ptr<HttpServer>> second = HttpServer::Start(options, Router());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  const std::string message(second.status().message());
  EXPECT_THAT(message, HasSubstr(absl::StrCat("127.0.0.1:", first->port())));
  EXPECT_THAT(absl::AsciiStrToLower(message), HasSubstr("in use"));
}

}  // namespace
}  // namespace dlab
