// For tests: an HTTP/1.1 server on 127.0.0.1 that answers every request with a handler's reply
// and records what arrived (method, target, decoded path and query, headers, body), so that a
// test sees exactly what libcurl sent. One connection at a time, each closed after its reply.
// The handler runs on the server's thread; requests() is thread-safe.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "auth/signing.h"

namespace dlab::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;                                      // as sent: "/api/v1/jobs?limit=5"
  std::string path;                                        // decoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded, '+' as space
  std::map<std::string, std::string> headers;              // names lower case
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  // The request as the server's signature check sees it.
  auth::RequestToSign ToSign() const {
    return auth::RequestToSign{.method = method, .path = path, .query = query, .headers = headers};
  }
};

struct FakeReply {
  int status = 200;
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
};

inline FakeReply JsonReply(int status, const std::string& body) {
  return FakeReply{.status = status, .body = body, .headers = {"Content-Type: application/json"}};
}

inline std::string PercentDecode(const std::string& in, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    int value = 0;
    if (in[i] == '%' && i + 2 < in.size() && absl::SimpleHexAtoi(in.substr(i + 1, 2), &value)) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(plus_is_space && in[i] == '+' ? ' ' : in[i]);
    }
  }
  return out;
}

class FakeHttpServer final {
 public:
  using Handler = std::function<FakeReply(const ReceivedRequest&)>;

  explicit FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeHttpServer() {
    ::shutdown(listener_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  int port() const { return port_; }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (true) {
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      HandleConnection(fd);
      ::close(fd);
    }
  }

  void HandleConnection(int fd) {
    std::string data;
    char buf[65536];
    size_t header_end;
    while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
    }
    ReceivedRequest request;
    std::vector<std::string> lines = absl::StrSplit(data.substr(0, header_end), "\r\n");
    std::vector<std::string> request_line = absl::StrSplit(lines[0], ' ');
    if (request_line.size() < 2) return;
    request.method = request_line[0];
    request.target = request_line[1];
    size_t question = request.target.find('?');
    request.path = PercentDecode(request.target.substr(0, question), false);
    if (question != std::string::npos) {
      for (absl::string_view pair :
           absl::StrSplit(request.target.substr(question + 1), '&', absl::SkipEmpty())) {
        std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
        request.query.emplace_back(PercentDecode(kv.first, true), PercentDecode(kv.second, true));
      }
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
      if (request.headers.count(name)) {
        request.headers[name] += ", ";  // a repeated header: shows up in tests as a list
      }
      request.headers[name] += std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    size_t length = 0;
    if (!absl::SimpleAtoi(request.Header("content-length"), &length)) length = 0;
    request.body = data.substr(header_end + 4);
    while (request.body.size() < length) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      request.body.append(buf, static_cast<size_t>(n));
    }
    FakeReply reply = handler_(request);
    bool head = request.method == "HEAD";
    {
      std::lock_guard lock(mu_);
      requests_.push_back(std::move(request));
    }
    std::string out = absl::StrCat("HTTP/1.1 ", reply.status, " Fake\r\nConnection: close\r\n",
                                   "Content-Length: ", reply.body.size(), "\r\n");
    for (const std::string& header : reply.headers) absl::StrAppend(&out, header, "\r\n");
    absl::StrAppend(&out, "\r\n", head ? "" : reply.body);
    for (size_t sent = 0; sent < out.size();) {
      ssize_t n = ::write(fd, out.data() + sent, out.size() - sent);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  Handler handler_;
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<ReceivedRequest> requests_;  // GUARDED_BY(mu_)
};

}  // namespace dlab::testing
