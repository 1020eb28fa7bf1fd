// `dlab top`: a live view of this node's GPUs and the jobs on them. It polls the latest
// telemetry sample (GET /api/v1/telemetry) and the jobs holding resources (GET
// /api/v1/jobs?state=STARTING,RUNNING) and redraws a frame (see FormatTopFrame) every interval
// until interrupted. Not thread-safe: one command at a time.
#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/command_support.h"

namespace dlab {

struct TopOptions {
  absl::Duration interval = absl::Seconds(2);
  bool once = false;          // one frame, then return
  bool clear_screen = false;  // redraw in place with ANSI codes (stdout is a terminal)
};

// Prints one frame (once) or a frame every interval until SIGINT or SIGTERM, and then returns
// OK. Without clear_screen, frames follow each other separated by a blank line. Failures: what
// the requests return; while redrawing, a server that cannot be reached (Unavailable) is shown
// in the frame and asked again at the next interval.
absl::Status ShowTop(const CommandContext& ctx, const TopOptions& options);

}  // namespace dlab
