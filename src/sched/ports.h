// PortPool: the TCP ports that attempts get for MASTER_PORT and TF_CONFIG. A port handed out is
// never one that another attempt holds, nor one that some process on the machine is listening
// on at that moment. Reservations are machine-wide: each port handed out is also held as the
// abstract unix socket "dlab-port-<n>" until it is released (or dlabd exits), so two dlabd on one
// machine never hand out the same port. The pool rotates through its range so that a port just
// released (its old owners may linger) is the last to be reused. Thread-compatible: one owner.
#pragma once

#include <functional>
#include <map>
#include <vector>

#include "absl/status/statusor.h"

namespace dlab {

class PortPool {
 public:
  // [first, last]; is_free(port) says whether the port can be bound now (default: a real bind).
  // machine_wide = false keeps reservations inside this pool (for tests).
  PortPool(int first, int last, std::function<bool(int)> is_free = {}, bool machine_wide = true);
  ~PortPool();
  PortPool(const PortPool&) = delete;
  PortPool& operator=(const PortPool&) = delete;

  // Reserves n distinct free ports. ResourceExhausted when the range has too few.
  absl::StatusOr<std::vector<int>> Take(int n);
  // Reserves a port handed out before (an attempt recovered after a restart). False when some
  // other process holds its reservation.
  bool Reserve(int port);
  void Release(const std::vector<int>& ports);
  int reserved() const { return static_cast<int>(reserved_.size()); }

 private:
  bool TryReserve(int port);

  int first_;
  int last_;
  int next_;
  std::function<bool(int)> is_free_;
  bool machine_wide_;
  std::map<int, int> reserved_;  // port -> fd of its abstract socket (-1 when not machine-wide)
};

// Whether a TCP socket can bind 0.0.0.0:port now (SO_REUSEADDR, so TIME_WAIT does not count).
bool CanBindTcpPort(int port);

}  // namespace dlab
