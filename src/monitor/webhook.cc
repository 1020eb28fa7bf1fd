#include "monitor/webhook.h"

#include <curl/curl.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace dlab {
namespace {

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

long PostJson(const std::string& url, const std::string& body, absl::Duration timeout,
              std::string* error) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* c = curl_easy_init();
  if (c == nullptr) {
    *error = "curl_easy_init failed";
    return 0;
  }
  char message[CURL_ERROR_SIZE] = "";
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, message);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Discard);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  if (rc == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  } else {
    *error = *message ? message : curl_easy_strerror(rc);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return status;
}

WebhookNotifier::WebhookNotifier(WebhookOptions options)
    : options_(std::move(options)), thread_([this] { Loop(); }) {}

WebhookNotifier::~WebhookNotifier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (!queue_.empty())
      spdlog::warn("alerts: {} webhook deliveries dropped at shutdown", queue_.size());
  }
  cv_.notify_all();
  thread_.join();
}

void WebhookNotifier::Send(const AlertEvent& event) {
  if (event.webhook.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(event);
    ++stats_.pending;
  }
  cv_.notify_all();
}

WebhookStats WebhookNotifier::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void WebhookNotifier::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    AlertEvent event = queue_.front();
    lock.unlock();
    std::string body = AlertEventJson(event).dump();
    absl::Duration backoff = options_.first_backoff;
    bool delivered = false;
    std::string why;
    for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
      std::string error;
      long status = PostJson(event.webhook, body, options_.timeout, &error);
      lock.lock();
      ++stats_.attempts;
      bool stopping = stop_;
      lock.unlock();
      if (status >= 200 && status < 300) {
        delivered = true;
        break;
      }
      why = status == 0 ? error : absl::StrCat("HTTP ", status);
      if (stopping || attempt == options_.max_attempts) break;
      lock.lock();
      cv_.wait_for(lock, absl::ToChronoMilliseconds(backoff), [this] { return stop_; });
      lock.unlock();
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    if (!delivered) {
      spdlog::warn("alerts: {} {} for {} not delivered to {}: {}", event.rule, event.state,
                   event.key, event.webhook, why);
    }
    lock.lock();
    queue_.pop_front();
    --stats_.pending;
    ++(delivered ? stats_.delivered : stats_.failed);
  }
}

}  // namespace dlab
