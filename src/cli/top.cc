#include "cli/top.h"

#include <signal.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/top_format.h"

namespace dlab {
namespace {

using nlohmann::json;

constexpr char kClearAndHome[] = "\x1b[H\x1b[2J";
constexpr int kMaxRunningJobs = 500;

std::atomic<bool> interrupted{false};

// Makes SIGINT and SIGTERM set `interrupted` instead of ending the process, while in scope.
class InterruptFlag final {
 public:
  InterruptFlag() {
    interrupted = false;
    struct sigaction action {};
    action.sa_handler = [](int) { interrupted = true; };
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~InterruptFlag() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptFlag(const InterruptFlag&) = delete;
  InterruptFlag& operator=(const InterruptFlag&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Sleeps until `until` or an interrupt, whichever comes first; false when interrupted.
bool SleepUntil(absl::Time until) {
  while (!interrupted) {
    absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    absl::SleepFor(std::min(left, absl::Milliseconds(100)));
  }
  return false;
}

absl::StatusOr<std::string> Frame(const CommandContext& ctx) {
  // The latest sample is all a frame shows; a short `since` keeps the window's samples out.
  auto telemetry = ctx.client->GetJson("/api/v1/telemetry", {{"since", "1s"}});
  if (!telemetry.ok()) return telemetry.status();
  // A starting job holds its GPUs too.
  auto jobs = ListPaged(ctx, "/api/v1/jobs", "jobs", {{"state", "STARTING,RUNNING"}},
                        kMaxRunningJobs, kMaxRunningJobs);
  if (!jobs.ok()) return jobs.status();
  return FormatTopFrame(telemetry->value("latest", json()), *jobs);
}

}  // namespace

absl::Status ShowTop(const CommandContext& ctx, const TopOptions& options) {
  if (options.once) {
    absl::StatusOr<std::string> frame = Frame(ctx);
    if (!frame.ok()) return frame.status();
    *ctx.out << *frame;
    return absl::OkStatus();
  }
  InterruptFlag flag;
  bool first = true;
  while (!interrupted) {
    absl::Time next = absl::Now() + options.interval;
    absl::StatusOr<std::string> frame = Frame(ctx);
    if (!frame.ok() && !absl::IsUnavailable(frame.status())) return frame.status();
    if (interrupted) break;
    std::string text =
        frame.ok() ? *frame : absl::StrCat(frame.status().message(), "; trying again\n");
    if (options.clear_screen) {
      *ctx.out << kClearAndHome << text;
    } else {
      *ctx.out << (first ? "" : "\n") << text;
    }
    ctx.out->flush();
    first = false;
    if (!SleepUntil(next)) break;
  }
  return absl::OkStatus();
}

}  // namespace dlab
