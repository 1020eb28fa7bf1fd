// PortPool: the TCP ports that attempts get for MASTER_PORT and TF_CONFIG. A port handed out is
// never one that another attempt holds, nor one that some process on the machine is listening
// on at that moment; the pool rotates through its range so that a port just released (its
// old owners may linger) is the last to be reused. Thread-compatible: one owner.
#pragma once

#include <functional>
#include <set>
#include <vector>

#include "absl/status/statusor.h"

namespace dlab {

class PortPool {
 public:
  // [first, last]; is_free(port) says whether the port can be bound now (default: a real bind).
  PortPool(int first, int last, std::function<bool(int)> is_free = {});

  // n distinct ports not in held. ResourceExhausted when the range has too few free ports.
  absl::StatusOr<std::vector<int>> Take(int n, const std::set<int>& held);

 private:
  int first_;
  int last_;
  int next_;
  std::function<bool(int)> is_free_;
};

// Whether a TCP socket can bind 0.0.0.0:port now (SO_REUSEADDR, so TIME_WAIT does not count).
bool CanBindTcpPort(int port);

}  // namespace dlab
