// How commands ask a person for input (a user name, a password) and read a password given on
// standard input. The terminal implementation reads stdin and writes its prompts to stderr,
// with echo off while a password is typed. Not thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlab {

class Prompter {
 public:
  enum class Echo { kShown, kHidden };

  virtual ~Prompter() = default;
  // Whether there is a person to ask: stdin is a terminal.
  virtual bool Interactive() = 0;
  // Shows `prompt` and reads one line, without its line end. Cancelled at the end of input.
  virtual absl::StatusOr<std::string> Ask(absl::string_view prompt, Echo echo) = 0;
  // The first line of standard input, without its line end (for --password-stdin).
  // InvalidArgument when stdin is empty.
  virtual absl::StatusOr<std::string> ReadStdinLine() = 0;
};

std::unique_ptr<Prompter> NewTerminalPrompter();

// The first line of text without its line end ("\n" or "\r\n").
std::string FirstLine(absl::string_view text);

}  // namespace dlab
