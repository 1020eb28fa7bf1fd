#include "sched/ports.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace dlab {
namespace {

TEST(PortPoolTest, SkipsReservedAndBusyPortsAndRotates) {
  PortPool pool(
      100, 105, [](int port) { return port != 102; }, /*machine_wide=*/false);
  ASSERT_TRUE(pool.Reserve(100));  // e.g. an attempt recovered after a restart
  EXPECT_FALSE(pool.Reserve(100));
  auto a = pool.Take(2);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<int>{101, 103}));
  auto b = pool.Take(2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (std::vector<int>{104, 105}));
  EXPECT_EQ(pool.Take(1).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pool.reserved(), 5);  // a failed Take keeps nothing
  pool.Release({100});
  auto c = pool.Take(1);  // wraps around to the released port
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, std::vector<int>{100});
}

TEST(PortPoolTest, TwoPoolsOnOneMachineNeverHandOutTheSamePort) {
  // Ports far from the default range, so that a dlabd running on this machine does not interfere.
  auto always = [](int) { return true; };
  PortPool first(61000 + getpid() % 1000 * 4, 61003 + getpid() % 1000 * 4, always);
  PortPool second(61000 + getpid() % 1000 * 4, 61003 + getpid() % 1000 * 4, always);
  auto a = first.Take(2);
  auto b = second.Take(2);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int p : *a) EXPECT_EQ(std::count(b->begin(), b->end(), p), 0) << p;
  EXPECT_EQ(second.Take(1).status().code(), absl::StatusCode::kResourceExhausted);
  first.Release(*a);
  EXPECT_TRUE(second.Take(2).ok());
}

TEST(PortPoolTest, RealBindCheckSeesAListeningSocket) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  EXPECT_FALSE(CanBindTcpPort(port));
  close(fd);
  EXPECT_TRUE(CanBindTcpPort(port));
}

}  // namespace
}  // namespace dlab
