#include "cli/prompter.h"

#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>

namespace dlab {
namespace {

// The terminal's settings while echo is off, put back on exit or on Ctrl-C.
termios g_saved_termios;
volatile sig_atomic_t g_echo_off = 0;

void RestoreEchoAndDie(int signal_number) {
  if (g_echo_off) ::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

class TerminalPrompter final : public Prompter {
 public:
  bool Interactive() override { return ::isatty(STDIN_FILENO) == 1; }

  absl::StatusOr<std::string> Ask(absl::string_view prompt, Echo echo) override {
    std::cerr << prompt << std::flush;
    bool hide = echo == Echo::kHidden && ::tcgetattr(STDIN_FILENO, &g_saved_termios) == 0;
    void (*old_int)(int) = SIG_DFL;
    void (*old_term)(int) = SIG_DFL;
    if (hide) {
      termios quiet = g_saved_termios;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      old_int = std::signal(SIGINT, RestoreEchoAndDie);
      old_term = std::signal(SIGTERM, RestoreEchoAndDie);
      g_echo_off = 1;
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::string line;
    bool got = static_cast<bool>(std::getline(std::cin, line));
    if (hide) {
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
      g_echo_off = 0;
      std::signal(SIGINT, old_int);
      std::signal(SIGTERM, old_term);
      std::cerr << "\n";
    }
    if (!got) return absl::CancelledError("no answer (end of input)");
    return FirstLine(line);
  }

  absl::StatusOr<std::string> ReadStdinLine() override {
    std::string line;
    if (!std::getline(std::cin, line) && line.empty()) {
      return absl::InvalidArgumentError("standard input is empty");
    }
    return FirstLine(line);
  }
};

}  // namespace

std::unique_ptr<Prompter> NewTerminalPrompter() { return std::make_unique<TerminalPrompter>(); }

std::string FirstLine(absl::string_view text) {
  absl::string_view line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return std::string(line);
}

}  // namespace dlab
