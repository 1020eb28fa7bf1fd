#include "sched/ports.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace dlab {

bool CanBindTcpPort(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

PortPool::PortPool(int first, int last, std::function<bool(int)> is_free)
    : first_(first), last_(last), next_(first), is_free_(std::move(is_free)) {
  if (!is_free_) is_free_ = CanBindTcpPort;
}

absl::StatusOr<std::vector<int>> PortPool::Take(int n, const std::set<int>& held) {
  std::vector<int> out;
  int size = last_ - first_ + 1;
  for (int tried = 0; tried < size && static_cast<int>(out.size()) < n; ++tried) {
    int port = next_;
    next_ = next_ == last_ ? first_ : next_ + 1;
    if (held.contains(port) || !is_free_(port)) continue;
    out.push_back(port);
  }
  if (static_cast<int>(out.size()) < n) {
    return absl::ResourceExhaustedError(absl::StrCat("no ", n, " free ports in ", first_, "-",
                                                     last_, " (", held.size(),
                                                     " held by running attempts)"));
  }
  return out;
}

}  // namespace dlab
