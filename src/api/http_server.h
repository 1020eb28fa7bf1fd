// A small HTTP/1.1 server (Boost.Beast underneath, kept out of this header): a Router maps
// method + path pattern to handlers; handlers run on the server's threads and must not block
// for long. Streaming responses (Server-Sent Events) are pulled from a StreamSource.
// HttpServer is thread-safe; Router is built before Start and then read-only.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dlab {

struct HttpRequest {
  std::string method;                              // "GET", "POST", ...
  std::string path;                                // percent-decoded, without the query
  std::multimap<std::string, std::string> query;   // percent-decoded
  std::map<std::string, std::string> headers;      // names lower-cased
  std::map<std::string, std::string> path_params;  // "{id}" in the pattern -> value
  std::string body;
  std::string remote;  // "127.0.0.1:53412"

  // The first value of a query parameter / header (name lower-case), if present.
  std::optional<std::string> Query(std::string_view key) const;
  std::optional<std::string> Header(std::string_view name) const;
};

struct StreamChunk {
  std::string data;   // bytes to send now; may be empty
  bool done = false;  // true: close the stream after sending data
};

// The body of a streaming response, produced a piece at a time.
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // Called on a server thread about every poll interval until it returns done or the client
  // goes away. Must return quickly.
  virtual StreamChunk Next() = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, body is ignored: the response is sent with chunked encoding, pulled from stream.
  std::shared_ptr<StreamSource> stream;
  absl::Duration stream_poll = absl::Milliseconds(100);
};

using Handler = std::function<HttpResponse(const HttpRequest&)>;

// The one place canonical status codes become HTTP statuses:
// InvalidArgument/OutOfRange 400, Unauthenticated 401, PermissionDenied 403, NotFound 404,
// AlreadyExists/Aborted 409, FailedPrecondition 409, ResourceExhausted 429, Unimplemented 501,
// Unavailable 503, DeadlineExceeded 504, others 500.
int HttpStatusFor(absl::StatusCode code);
// {"error": {"code": "INVALID_ARGUMENT", "message": "..."}} with HttpStatusFor(status.code()).
HttpResponse ErrorResponse(const absl::Status& status);
// An error response with an explicit HTTP status (e.g. 413, 405), same body shape.
HttpResponse ErrorResponse(int http_status, std::string_view code, std::string_view message);

struct RouteOptions {
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413 before the handler runs
};

class Router {
 public:
  // pattern: "/api/v1/jobs/{id}/logs"; a "{name}" segment matches one path segment.
  // A duplicate (method, pattern) is a programming error and crashes.
  void Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});

  struct Match {
    const Handler* handler = nullptr;
    RouteOptions options;
    std::map<std::string, std::string> path_params;
    int error_status = 0;  // 404 no such path, 405 path exists but not for this method
  };
  Match Find(std::string_view method, std::string_view path) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
    RouteOptions options;
  };
  std::vector<Route> routes_;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: pick a free port
  int threads = 2;
  absl::Duration idle_timeout = absl::Seconds(60);
  // Called after each response (not for each stream chunk); for metrics and access logs.
  std::function<void(const HttpRequest&, int status, absl::Duration elapsed)> on_response;
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  // Binds and starts serving on background threads. Unavailable with a message naming the
  // address when it is already in use or cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                           Router router);
  virtual int port() const = 0;  // the bound port
  virtual void Stop() = 0;       // stops accepting, closes connections, joins threads
};

}  // namespace dlab
