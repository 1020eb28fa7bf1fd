#include "sched/ports.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace dlab {
namespace {

TEST(PortPoolTest, SkipsHeldAndBusyPortsAndRotates) {
  PortPool pool(100, 105, [](int port) { return port != 102; });
  auto a = pool.Take(2, {100});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<int>{101, 103}));
  auto b = pool.Take(2, {101, 103});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (std::vector<int>{104, 105}));
  auto c = pool.Take(1, {101, 103, 104, 105});  // wraps around
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, std::vector<int>{100});
  EXPECT_EQ(pool.Take(3, {100, 101, 103, 104}).status().code(),
            absl::StatusCode::kResourceExhausted);
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
