// dlab-sim's command line: parses the flags, reads the trace and the cluster, replays the trace
// through the scheduler (see simulator.h) and prints the report. One call per process.
#pragma once

#include <ostream>

namespace dlab::sim {

inline constexpr int kSimExitFailure = 1;  // the trace could not be read, or the run failed
inline constexpr int kSimExitUsage = 2;    // bad flags, cluster, policy or parameters

// Writes the report (text, or JSON with --json) to out and errors to err; returns the exit
// status.
int RunSimCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace dlab::sim
