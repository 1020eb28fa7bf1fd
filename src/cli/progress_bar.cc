#include "cli/progress_bar.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace dlab {
namespace {

constexpr int64_t kMinBytesForBar = 1 << 20;
constexpr int kBarWidth = 30;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

}  // namespace

bool ProgressBar::ShouldShow(int64_t total_bytes) {
  return total_bytes > kMinBytesForBar && ::isatty(STDERR_FILENO) == 1;
}

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)) {}

ProgressBar::~ProgressBar() {
  if (finished_) return;
  std::fputc('\n', stderr);  // stopped early: keep the partial bar, but end its line
  std::fflush(stderr);
}

void ProgressBar::Update(int64_t done, int64_t total) {
  done_ = done;
  total_ = total;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  Draw();
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  if (total_ > 0) done_ = total_;
  Draw();
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void ProgressBar::Draw() {
  double fraction = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  if (fraction > 1.0) fraction = 1.0;
  int filled = static_cast<int>(fraction * kBarWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kBarWidth - filled), '.');
  std::string line =
      absl::StrFormat("\r%-10s [%s] %3d%%  %s / %s", label_, bar, static_cast<int>(fraction * 100),
                      FormatBytes(done_), FormatBytes(total_));
  line += "\x1b[K";  // clear what a longer previous line left behind
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrFormat("%d B", bytes);
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

}  // namespace dlab
