#include "sched/ports.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

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

PortPool::PortPool(int first, int last, std::function<bool(int)> is_free, bool machine_wide)
    : first_(first),
      last_(last),
      next_(first),
      is_free_(std::move(is_free)),
      machine_wide_(machine_wide) {
  if (!is_free_) is_free_ = CanBindTcpPort;
}

PortPool::~PortPool() {
  for (const auto& [port, fd] : reserved_) {
    if (fd >= 0) close(fd);
  }
}

bool PortPool::TryReserve(int port) {
  if (reserved_.contains(port)) return false;
  int fd = -1;
  if (machine_wide_) {
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    std::string name = absl::StrCat("dlab-port-", port);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract: leading NUL
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      close(fd);
      return false;
    }
  }
  reserved_[port] = fd;
  return true;
}

bool PortPool::Reserve(int port) { return TryReserve(port); }

void PortPool::Release(const std::vector<int>& ports) {
  for (int port : ports) {
    auto it = reserved_.find(port);
    if (it == reserved_.end()) continue;
    if (it->second >= 0) close(it->second);
    reserved_.erase(it);
  }
}

absl::StatusOr<std::vector<int>> PortPool::Take(int n) {
  std::vector<int> out;
  int size = last_ - first_ + 1;
  for (int tried = 0; tried < size && static_cast<int>(out.size()) < n; ++tried) {
    int port = next_;
    next_ = next_ == last_ ? first_ : next_ + 1;
    if (reserved_.contains(port) || !is_free_(port)) continue;
    if (!TryReserve(port)) continue;  // another dlabd on this machine holds it
    out.push_back(port);
  }
  if (static_cast<int>(out.size()) < n) {
    Release(out);
    return absl::ResourceExhaustedError(absl::StrCat("no ", n, " free ports in ", first_, "-",
                                                     last_, " (", reserved_.size(),
                                                     " held by running attempts)"));
  }
  return out;
}

}  // namespace dlab
