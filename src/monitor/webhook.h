// Delivers alert events to webhooks: an HTTP POST of the event as JSON (AlertEventJson), on a
// thread of its own, in order per notifier; a delivery that fails (no answer, or a status other
// than 2xx) is retried with exponential backoff. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "monitor/alerts.h"

namespace dlab {

struct WebhookOptions {
  int max_attempts = 6;                             // per event
  absl::Duration first_backoff = absl::Seconds(1);  // doubled after each failed attempt
  absl::Duration max_backoff = absl::Minutes(1);
  absl::Duration timeout = absl::Seconds(10);  // per attempt
};

struct WebhookStats {
  int64_t delivered = 0;
  int64_t failed = 0;    // given up after max_attempts
  int64_t attempts = 0;  // every POST tried
  int64_t pending = 0;   // queued or being delivered
};

class WebhookNotifier {
 public:
  explicit WebhookNotifier(WebhookOptions options = {});
  ~WebhookNotifier();  // stops; events not delivered yet are dropped (and logged)

  // Queues the event for event.webhook (ignored when that is empty).
  void Send(const AlertEvent& event);
  WebhookStats Stats() const;

 private:
  void Loop();

  const WebhookOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<AlertEvent> queue_ ABSL_GUARDED_BY(mu_);
  WebhookStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: started once the rest is initialized
};

// One POST of body (JSON) to url: the HTTP status, or 0 with *error set when there was no answer.
long PostJson(const std::string& url, const std::string& body, absl::Duration timeout,
              std::string* error);

}  // namespace dlab
