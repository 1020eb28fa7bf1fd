// dlab-shim: the supervisor of one attempt, spawned by dlabd's local backend in its own session
// so that it outlives dlabd. Usage: dlab-shim --attempt-dir DIR --lock-fd N
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "absl/strings/numbers.h"
#include "backend/local/supervisor.h"

int main(int argc, char** argv) {
  dlab::SupervisorOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i];
    if (flag == "--attempt-dir") {
      options.attempt_dir = argv[i + 1];
    } else if (flag != "--lock-fd" || !absl::SimpleAtoi(argv[i + 1], &options.lock_fd)) {
      std::fprintf(stderr, "dlab-shim: bad argument %s\n", argv[i]);
      return 2;
    }
  }
  if (options.attempt_dir.empty() || argc % 2 == 0) {
    std::fprintf(stderr, "usage: dlab-shim --attempt-dir DIR [--lock-fd N]\n");
    return 2;
  }
  const char* no_cgroups = std::getenv("DLAB_NO_CGROUPS");
  options.disable_cgroups = no_cgroups != nullptr && std::string_view(no_cgroups) == "1";
  absl::Status status = dlab::RunSupervisor(options);
  if (!status.ok()) {
    std::fprintf(stderr, "dlab-shim: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
