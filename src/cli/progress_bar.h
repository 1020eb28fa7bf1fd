// A one-line progress bar drawn on stderr for packing and uploading large code folders; shown only
// when stderr is a terminal. Not thread-safe: one bar per task, updated from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dlab {

class ProgressBar final {
 public:
  // Whether a bar is worth showing for `total_bytes` of work: stderr is a terminal and the work
  // is over 1 MiB.
  static bool ShouldShow(int64_t total_bytes);

  explicit ProgressBar(std::string label);
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar();  // ends the line if Finish was not called (the work stopped early)

  // Redraws with `done` of `total` bytes, at most ten times a second.
  void Update(int64_t done, int64_t total);
  // Draws the final state and ends the line.
  void Finish();

 private:
  void Draw();

  std::string label_;
  int64_t done_ = 0;
  int64_t total_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point last_draw_;
};

// "512 B", "3.2 KiB", "1.0 MiB", "4.7 GiB".
std::string FormatBytes(int64_t bytes);

}  // namespace dlab
