// For tests: a small blocking HTTP client over libcurl, talking to a server on 127.0.0.1.
#pragma once

#include <curl/curl.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace dlab::testing {

struct ClientRequest {
  std::string method = "GET";
  std::string path = "/";
  std::string body;
  std::vector<std::string> headers;  // e.g. "Content-Type: application/json"
  // Called with each piece of the body as it arrives; return false to hang up.
  std::function<bool(std::string_view)> on_data;
  long timeout_ms = 10000;
};

struct ClientReply {
  CURLcode code = CURLE_OK;
  long status = 0;  // 0 when no response came
  std::string body;
  std::map<std::string, std::string> headers;  // of the final response, names lower-cased

  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
  // The message of an API error body ({"error": {"message": ...}}); "" for any other body.
  std::string Message() const {
    nlohmann::json j = Json();
    return j.is_object() && j.contains("error") ? j["error"].value("message", "") : "";
  }
};

// One curl easy handle: requests sent through the same Client reuse its connection.
class Client {
 public:
  explicit Client(int port) : port_(port), curl_(curl_easy_init()) {}
  ~Client() { curl_easy_cleanup(curl_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  ClientReply Send(const ClientRequest& request) {
    curl_easy_reset(curl_);
    Transfer transfer{.request = request};
    const std::string url = absl::StrCat("http://127.0.0.1:", port_, request.path);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, request.timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Client::OnBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &Client::OnHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &transfer);
    if (request.method == "HEAD") {
      curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
    } else if (request.method != "GET" || !request.body.empty()) {
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    if (!request.body.empty()) {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
    curl_slist* headers = nullptr;
    for (const std::string& header : request.headers) {
      headers = curl_slist_append(headers, header.c_str());
    }
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    transfer.reply.code = curl_easy_perform(curl_);
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &transfer.reply.status);
    curl_slist_free_all(headers);
    return std::move(transfer.reply);
  }

  ClientReply Get(std::string path) { return Send({.path = std::move(path)}); }

 private:
  struct Transfer {
    const ClientRequest& request;
    ClientReply reply;
  };

  static size_t OnBody(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const std::string_view piece(data, size * count);
    transfer->reply.body.append(piece);
    if (transfer->request.on_data && !transfer->request.on_data(piece)) return 0;
    return piece.size();
  }

  static size_t OnHeader(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const std::string_view line(data, size * count);
    if (line.starts_with("HTTP/")) transfer->reply.headers.clear();  // e.g. after 100 Continue
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string name(line.substr(0, colon));
      absl::AsciiStrToLower(&name);
      std::string value(line.substr(colon + 1));
      absl::StripAsciiWhitespace(&value);
      transfer->reply.headers[name] = value;
    }
    return line.size();
  }

  int port_;
  CURL* curl_;
};

}  // namespace dlab::testing
