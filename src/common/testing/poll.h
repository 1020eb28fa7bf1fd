// For tests: waiting for a condition with a deadline, and reading a file that may not exist yet.
#pragma once

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

namespace dlab::testing {

// Calls fn every `every` until it returns true (true) or `deadline` has passed (false).
inline bool PollUntil(const std::function<bool()>& fn,
                      std::chrono::milliseconds deadline = std::chrono::seconds(30),
                      std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (!fn()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(every);
  }
  return true;
}

// The file's contents; "" when it cannot be read.
inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace dlab::testing
