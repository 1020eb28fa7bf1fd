#include "api/http_server.h"

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace dlab {

std::optional<std::string> HttpRequest::Query(std::string_view key) const {
  auto it = query.find(std::string(key));
  if (it == query.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> HttpRequest::Header(std::string_view name) const {
  std::string key(name);
  absl::AsciiStrToLower(&key);
  auto it = headers.find(key);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

HttpResponse ErrorResponse(const absl::Status& status) {
  return ErrorResponse(HttpStatusFor(status.code()), absl::StatusCodeToString(status.code()),
                       std::string_view(status.message().data(), status.message().size()));
}

HttpResponse ErrorResponse(int http_status, std::string_view code, std::string_view message) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  HttpResponse response;
  response.status = http_status;
  // Replace invalid UTF-8 (e.g. from an exception message) rather than throwing.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

namespace {

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> pieces;
  for (size_t begin = 0;;) {
    const size_t end = text.find(separator, begin);
    pieces.push_back(text.substr(begin, end - begin));
    if (end == std::string_view::npos) return pieces;
    begin = end + 1;
  }
}

// Path segments without the leading and one trailing slash; "/" has none.
std::vector<std::string_view> SplitPath(std::string_view path) {
  if (path.starts_with('/')) path.remove_prefix(1);
  if (path.ends_with('/')) path.remove_suffix(1);
  if (path.empty()) return {};
  return Split(path, '/');
}

bool IsParam(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

bool SameShape(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (IsParam(a[i]) != IsParam(b[i])) return false;
    if (!IsParam(a[i]) && a[i] != b[i]) return false;
  }
  return true;
}

bool SegmentsMatch(const std::vector<std::string>& pattern,
                   const std::vector<std::string_view>& path) {
  if (pattern.size() != path.size()) return false;
  for (size_t i = 0; i < path.size(); ++i) {
    if (IsParam(pattern[i]) ? path[i].empty() : pattern[i] != path[i]) return false;
  }
  return true;
}

size_t LiteralCount(const std::vector<std::string>& segments) {
  size_t count = 0;
  for (const std::string& segment : segments) count += IsParam(segment) ? 0 : 1;
  return count;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler, RouteOptions options) {
  Route route{.method = std::move(method), .handler = std::move(handler), .options = options};
  for (std::string_view segment : SplitPath(pattern)) route.segments.emplace_back(segment);
  for (const Route& existing : routes_) {
    if (existing.method == route.method && SameShape(existing.segments, route.segments)) {
      std::fprintf(stderr, "dlab: duplicate HTTP route %s %s\n", route.method.c_str(),
                   pattern.c_str());
      std::abort();
    }
  }
  routes_.push_back(std::move(route));
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  const std::vector<std::string_view> parts = SplitPath(path);
  auto more_specific = [](const Route* best, const Route& candidate) {
    return best == nullptr || LiteralCount(candidate.segments) > LiteralCount(best->segments)
               ? &candidate
               : best;
  };
  const Route* exact = nullptr;
  const Route* get_for_head = nullptr;
  bool path_exists = false;
  for (const Route& route : routes_) {
    if (!SegmentsMatch(route.segments, parts)) continue;
    path_exists = true;
    if (route.method == method) {
      exact = more_specific(exact, route);
    } else if (method == "HEAD" && route.method == "GET") {
      get_for_head = more_specific(get_for_head, route);
    }
  }
  const Route* route = exact != nullptr ? exact : get_for_head;
  Match match;
  if (route == nullptr) {
    match.error_status = path_exists ? 405 : 404;
    return match;
  }
  match.handler = &route->handler;
  match.options = route->options;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& segment = route->segments[i];
    if (IsParam(segment)) {
      match.path_params[segment.substr(1, segment.size() - 2)] = std::string(parts[i]);
    }
  }
  return match;
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kHeaderLimit = 64 * 1024;
// After an early error reply, how long and how much of the unread request body we swallow so
// that closing the socket does not reset the connection before the client reads the reply.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 64 << 20;

auto Redirect(beast::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

std::string_view View(beast::string_view s) { return std::string_view(s.data(), s.size()); }

Clock::duration ToSteady(absl::Duration d) {
  if (d >= absl::Hours(24 * 365)) return std::chrono::hours(24 * 365);
  return std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(d));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int high = HexValue(in[i + 1]);
      const int low = HexValue(in[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// Fills request.path and request.query from a request target; false when it is malformed.
bool ParseTarget(std::string_view target, HttpRequest& request) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.starts_with(scheme)) {
      const size_t slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? "/" : target.substr(slash);
    }
  }
  if (!target.starts_with('/')) return false;
  const size_t question = target.find('?');
  std::optional<std::string> path = PercentDecode(target.substr(0, question), false);
  if (!path) return false;
  request.path = *std::move(path);
  if (question == std::string_view::npos) return true;
  for (std::string_view pair : Split(target.substr(question + 1), '&')) {
    if (pair.empty()) continue;
    const size_t equals = pair.find('=');
    std::optional<std::string> key = PercentDecode(pair.substr(0, equals), true);
    std::optional<std::string> value = PercentDecode(
        equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1), true);
    if (!key || !value) return false;
    request.query.emplace(*std::move(key), *std::move(value));
  }
  return true;
}

// A syntax error in the request (as opposed to the peer going away or a timeout).
bool IsMalformed(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  return address.is_v6() ? absl::StrCat("[", address.to_string(), "]:", endpoint.port())
                         : absl::StrCat(address.to_string(), ":", endpoint.port());
}

void LogCoroutineFailure(std::exception_ptr failure) {
  if (!failure) return;
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    spdlog::error("http: connection failed: {}", e.what());
  } catch (...) {
    spdlog::error("http: connection failed with an unknown exception");
  }
}

class HttpServerImpl;

// One client connection. Everything here runs on the connection's strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServerImpl& server, uint64_t id, tcp::socket socket)
      : server_(server),
        id_(id),
        remote_(FormatEndpoint(RemoteOf(socket))),
        stream_(std::move(socket)),
        timer_(stream_.get_executor()) {}

  uint64_t id() const { return id_; }
  asio::any_io_executor executor() { return stream_.get_executor(); }

  asio::awaitable<void> Run();
  void Close();

 private:
  struct Reply {
    bool keep_alive = true;
    bool head = false;
  };

  static tcp::endpoint RemoteOf(const tcp::socket& socket) {
    beast::error_code ec;
    return socket.remote_endpoint(ec);
  }

  // Serves one request; false when the connection is done.
  asio::awaitable<bool> ServeOne(beast::flat_buffer& buffer);
  // Sends the response and reports it to on_response; false when writing it failed.
  asio::awaitable<bool> Respond(const HttpRequest& request, HttpResponse response, Reply reply,
                                Clock::time_point start);
  // Answers an error and closes the connection (after swallowing what the client still sends).
  asio::awaitable<bool> RespondAndClose(const HttpRequest& request, HttpResponse response,
                                        Clock::time_point start);
  asio::awaitable<bool> WriteWhole(HttpResponse& response, Reply reply);
  asio::awaitable<bool> WriteStream(HttpResponse& response, Reply reply);
  HttpResponse Invoke(const Handler& handler, const HttpRequest& request);
  void WatchForHangup();
  void StopWatchingForHangup();

  HttpServerImpl& server_;
  const uint64_t id_;
  const std::string remote_;
  beast::tcp_stream stream_;
  asio::steady_timer timer_;  // paces stream polls
  bool closed_ = false;
  bool peer_gone_ = false;
  uint64_t watch_generation_ = 0;
};

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(HttpServerOptions options, Router router)
      : options_(std::move(options)), router_(std::move(router)) {}
  ~HttpServerImpl() override { Stop(); }
  HttpServerImpl(const HttpServerImpl&) = delete;
  HttpServerImpl& operator=(const HttpServerImpl&) = delete;

  absl::Status Listen();
  void Serve();
  int port() const override { return port_; }
  void Stop() override;

  const HttpServerOptions& options() const { return options_; }
  const Router& router() const { return router_; }
  void Unregister(uint64_t id) {
    std::lock_guard lock(mu_);
    connections_.erase(id);
  }

 private:
  asio::awaitable<void> AcceptLoop();

  const HttpServerOptions options_;
  const Router router_;
  asio::io_context io_;
  tcp::acceptor acceptor_{asio::make_strand(io_)};
  int port_ = 0;
  std::mutex stop_mu_;  // serializes Stop()
  std::vector<std::thread> threads_;
  std::mutex mu_;
  bool stopping_ = false;                                        // guarded by mu_
  uint64_t next_id_ = 1;                                         // guarded by mu_
  std::map<uint64_t, std::shared_ptr<Connection>> connections_;  // guarded by mu_
};

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
  timer_.cancel();
}

asio::awaitable<void> Connection::Run() {
  std::shared_ptr<Connection> self = shared_from_this();
  beast::flat_buffer buffer;
  while (!closed_ && co_await ServeOne(buffer)) {
  }
  Close();
  server_.Unregister(id_);
}

asio::awaitable<bool> Connection::ServeOne(beast::flat_buffer& buffer) {
  const HttpServerOptions& options = server_.options();
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  // Checked against the route's limit below. (Beast 1.74 mishandles boost::none here.)
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  beast::error_code ec;
  stream_.expires_after(ToSteady(options.idle_timeout));
  co_await http::async_read_header(stream_, buffer, parser, Redirect(ec));
  const Clock::time_point start = Clock::now();
  HttpRequest request;
  request.remote = remote_;
  if (ec) {
    if (!IsMalformed(ec)) co_return false;
    co_return co_await RespondAndClose(
        request,
        ErrorResponse(400, "BAD_REQUEST", absl::StrCat("malformed request: ", ec.message())),
        start);
  }

  const auto& header = parser.get();
  request.method = std::string(View(header.method_string()));
  for (const auto& field : header) {
    std::string name(View(field.name_string()));
    absl::AsciiStrToLower(&name);
    const std::string value(View(field.value()));
    auto [it, inserted] = request.headers.emplace(std::move(name), value);
    if (!inserted) absl::StrAppend(&it->second, ", ", value);
  }
  if (!ParseTarget(View(header.target()), request)) {
    co_return co_await RespondAndClose(
        request,
        ErrorResponse(
            400, "BAD_REQUEST",
            absl::StrCat("malformed request target: ", std::string(View(header.target())))),
        start);
  }
  const Reply reply{.keep_alive = header.keep_alive(), .head = request.method == "HEAD"};

  Router::Match match = server_.router().Find(request.method, request.path);
  if (match.error_status != 0) {
    HttpResponse response =
        match.error_status == 405
            ? ErrorResponse(
                  405, "METHOD_NOT_ALLOWED",
                  absl::StrCat("method ", request.method, " is not allowed on ", request.path))
            : ErrorResponse(404, "NOT_FOUND", absl::StrCat("no such path: ", request.path));
    // An unread body would be taken for the next request.
    if (!parser.is_done()) co_return co_await RespondAndClose(request, std::move(response), start);
    co_return co_await Respond(request, std::move(response), reply, start) && reply.keep_alive;
  }

  const size_t max_body = match.options.max_body_bytes;
  HttpResponse too_large = ErrorResponse(
      413, "PAYLOAD_TOO_LARGE", absl::StrCat("request body is larger than ", max_body, " bytes"));
  if (parser.content_length() && *parser.content_length() > max_body) {
    co_return co_await RespondAndClose(request, std::move(too_large), start);
  }
  if (!parser.is_done()) {
    if (absl::EqualsIgnoreCase(request.Header("expect").value_or(""), "100-continue")) {
      http::response<http::empty_body> proceed{http::status::continue_, 11};
      stream_.expires_after(ToSteady(options.idle_timeout));
      co_await http::async_write(stream_, proceed, Redirect(ec));
      if (ec) co_return false;
    }
    parser.body_limit(max_body);
    stream_.expires_after(ToSteady(options.idle_timeout));
    co_await http::async_read(stream_, buffer, parser, Redirect(ec));
    if (ec == http::error::body_limit) {
      co_return co_await RespondAndClose(request, std::move(too_large), start);
    }
    if (IsMalformed(ec)) {
      co_return co_await RespondAndClose(
          request,
          ErrorResponse(400, "BAD_REQUEST", absl::StrCat("malformed request body: ", ec.message())),
          start);
    }
    if (ec) co_return false;
  }
  request.body = std::move(parser.get().body());
  request.path_params = std::move(match.path_params);
  HttpResponse response = Invoke(*match.handler, request);
  co_return co_await Respond(request, std::move(response), reply, start) && reply.keep_alive;
}

HttpResponse Connection::Invoke(const Handler& handler, const HttpRequest& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    spdlog::error("http: handler for {} {} threw: {}", request.method, request.path, e.what());
    return ErrorResponse(500, "INTERNAL", e.what());
  } catch (...) {
    spdlog::error("http: handler for {} {} threw an unknown exception", request.method,
                  request.path);
    return ErrorResponse(500, "INTERNAL", "unknown exception in handler");
  }
}

asio::awaitable<bool> Connection::Respond(const HttpRequest& request, HttpResponse response,
                                          Reply reply, Clock::time_point start) {
  const int status = response.status;
  const bool ok = response.stream && !reply.head ? co_await WriteStream(response, reply)
                                                 : co_await WriteWhole(response, reply);
  const auto& on_response = server_.options().on_response;
  if (on_response) {
    try {
      on_response(request, status, absl::FromChrono(Clock::now() - start));
    } catch (const std::exception& e) {
      spdlog::error("http: on_response threw: {}", e.what());
    }
  }
  co_return ok;
}

asio::awaitable<bool> Connection::RespondAndClose(const HttpRequest& request, HttpResponse response,
                                                  Clock::time_point start) {
  if (co_await Respond(request, std::move(response), Reply{.keep_alive = false}, start) &&
      !closed_) {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(kLingerTime);
    std::vector<char> sink(64 * 1024);
    size_t swallowed = 0;
    while (!ec && swallowed < kLingerBytes) {
      swallowed += co_await stream_.async_read_some(asio::buffer(sink), Redirect(ec));
    }
  }
  co_return false;
}

template <typename Message>
void SetCommonHeaders(Message& message, const HttpResponse& response, bool keep_alive) {
  message.set(http::field::server, "dlab");
  if (!response.content_type.empty()) message.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) message.insert(name, value);
  message.keep_alive(keep_alive);
}

asio::awaitable<bool> Connection::WriteWhole(HttpResponse& response, Reply reply) {
  http::response<http::string_body> message;
  message.version(11);
  message.result(static_cast<unsigned>(response.status));
  SetCommonHeaders(message, response, reply.keep_alive);
  message.content_length(response.body.size());
  if (!reply.head) message.body() = std::move(response.body);
  beast::error_code ec;
  stream_.expires_after(ToSteady(server_.options().idle_timeout));
  co_await http::async_write(stream_, message, Redirect(ec));
  // end_of_stream only says that the message asked for the connection to be closed.
  co_return !ec || ec == http::error::end_of_stream;
}

asio::awaitable<bool> Connection::WriteStream(HttpResponse& response, Reply reply) {
  const Clock::duration write_timeout = ToSteady(server_.options().idle_timeout);
  http::response<http::empty_body> message;
  message.version(11);
  message.result(static_cast<unsigned>(response.status));
  SetCommonHeaders(message, response, reply.keep_alive);
  if (response.content_type.starts_with("text/event-stream") &&
      message.find(http::field::cache_control) == message.end()) {
    message.set(http::field::cache_control, "no-cache");
  }
  message.chunked(true);
  http::response_serializer<http::empty_body> serializer(message);
  beast::error_code ec;
  stream_.expires_after(write_timeout);
  co_await http::async_write_header(stream_, serializer, Redirect(ec));
  if (ec) co_return false;

  std::shared_ptr<StreamSource> source = std::move(response.stream);
  peer_gone_ = false;
  WatchForHangup();
  bool ok = false;
  while (!closed_ && !peer_gone_) {
    StreamChunk chunk;
    try {
      chunk = source->Next();
    } catch (const std::exception& e) {
      spdlog::error("http: stream source threw: {}", e.what());
      break;
    }
    if (!chunk.data.empty()) {
      stream_.expires_after(write_timeout);
      co_await asio::async_write(stream_, http::make_chunk(asio::buffer(chunk.data)), Redirect(ec));
      if (ec) break;
    }
    if (chunk.done) {
      stream_.expires_after(write_timeout);
      co_await asio::async_write(stream_, http::make_chunk_last(), Redirect(ec));
      ok = !ec;
      break;
    }
    timer_.expires_after(ToSteady(response.stream_poll));
    co_await timer_.async_wait(Redirect(ec));
  }
  StopWatchingForHangup();
  co_return ok;
}

// While a stream is idle no write would notice that the client left, so wait for the socket to
// become readable: end of file or an error then means the client hung up.
void Connection::WatchForHangup() {
  const uint64_t generation = ++watch_generation_;
  stream_.socket().async_wait(
      tcp::socket::wait_read, [self = shared_from_this(), generation](beast::error_code ec) {
        if (generation != self->watch_generation_ || ec == asio::error::operation_aborted) return;
        if (!ec) {
          char byte;
          const ssize_t n =
              ::recv(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
          // Data (a pipelined request) or a spurious wakeup: the client is still there.
          if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) return;
        }
        self->peer_gone_ = true;
        self->timer_.cancel();
      });
}

void Connection::StopWatchingForHangup() {
  ++watch_generation_;
  beast::error_code ec;
  stream_.socket().cancel(ec);
}

absl::Status HttpServerImpl::Listen() {
  const std::string address = absl::StrCat(options_.host, ":", options_.port);
  auto unavailable = [&](const beast::error_code& ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", ec.message()));
  };
  beast::error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return unavailable(ec);
  if (endpoints.empty()) return unavailable(asio::error::host_not_found);
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor_.close(ignored);
    return unavailable(ec);
  }
  port_ = acceptor_.local_endpoint(ec).port();
  return absl::OkStatus();
}

void HttpServerImpl::Serve() {
  asio::co_spawn(acceptor_.get_executor(), AcceptLoop(), LogCoroutineFailure);
  const int threads = std::max(1, options_.threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: server thread caught: {}", e.what());
        }
      }
    });
  }
}

asio::awaitable<void> HttpServerImpl::AcceptLoop() {
  asio::steady_timer backoff(acceptor_.get_executor());
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(
        asio::any_io_executor(asio::make_strand(io_)), Redirect(ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("http: accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));  // e.g. out of file descriptors
      co_await backoff.async_wait(Redirect(ec));
      continue;
    }
    std::shared_ptr<Connection> connection;
    {
      std::lock_guard lock(mu_);
      if (stopping_) co_return;  // the socket closes as it goes out of scope
      const uint64_t id = next_id_++;
      connection = std::make_shared<Connection>(*this, id, std::move(socket));
      connections_.emplace(id, connection);
    }
    asio::co_spawn(connection->executor(), connection->Run(), LogCoroutineFailure);
  }
}

void HttpServerImpl::Stop() {
  std::lock_guard stop_lock(stop_mu_);
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (const auto& [id, connection] : connections_) open.push_back(connection);
  }
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  for (const std::shared_ptr<Connection>& connection : open) {
    asio::post(connection->executor(), [connection] { connection->Close(); });
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                              Router router) {
  auto server = std::make_unique<HttpServerImpl>(std::move(options), std::move(router));
  if (absl::Status listening = server->Listen(); !listening.ok()) return listening;
  server->Serve();
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace dlab
