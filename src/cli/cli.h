// The `dlab` command line: parses arguments, finds the server, runs one subcommand and turns its
// result into an exit status (0 ok, 1 failure with "dlab: <message>" on stderr, 2 usage error).
// Called once from main; not thread-safe.
#pragma once

namespace dlab {

inline constexpr char kDlabVersion[] = "0.1.0";

int RunCli(int argc, char** argv);

}  // namespace dlab
