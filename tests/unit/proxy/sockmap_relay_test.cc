// The kernel relay on in-process TCP pairs: bytes cross both ways, closes propagate, and the
// sockhash is empty afterwards. Skipped where the kernel refuses BPF (no root / no sockmap).
#include "proxy/sockmap_relay.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace pgbranch::proxy {
namespace {

// A connected TCP pair over loopback: {connecting end, accepted end}.
std::pair<int, int> TcpPair() {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  listen(l, 1);
  socklen_t len = sizeof(a);
  getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  int s = accept(l, nullptr, nullptr);
  close(l);
  return {c, s};
}

std::string ReadN(int fd, size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    ssize_t r = read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

TEST(SockmapRelayTest, SplicesBothWaysAndLeavesNothingBehind) {
  ProxyMetrics metrics;
  auto relay = SockmapRelay::Create(&metrics, 64);
  if (!relay.ok()) GTEST_SKIP() << relay.status();
  auto [client, proxy_client] = TcpPair();
  auto [proxy_server, server] = TcpPair();
  Stream c(proxy_client), s(proxy_server);
  // Sent before the splice: must still arrive.
  ASSERT_EQ(write(client, "early", 5), 5);
  std::thread t([&] { EXPECT_EQ((*relay)->Run(&c, &s), SockmapRelay::Result::kClosed); });
  EXPECT_EQ(ReadN(server, 5), "early");
  std::string big(3 << 20, 'x');
  std::thread writer(
      [&] { EXPECT_EQ(write(server, big.data(), big.size()), (ssize_t)big.size()); });
  EXPECT_EQ(ReadN(client, big.size()), big);
  writer.join();
  EXPECT_EQ((*relay)->MapEntries(), 2u);
  // The server's last words arrive before its close.
  ASSERT_EQ(write(server, "bye", 3), 3);
  close(server);
  EXPECT_EQ(ReadN(client, 3), "bye");
  char b;
  EXPECT_EQ(read(client, &b, 1), 0);  // EOF
  t.join();
  EXPECT_EQ((*relay)->MapEntries(), 0u);
  EXPECT_EQ(metrics.spliced_connections().Value(), 0);
  close(client);
}

TEST(SockmapRelayTest, ClientHalfClosePassesThrough) {
  ProxyMetrics metrics;
  auto relay = SockmapRelay::Create(&metrics, 64);
  if (!relay.ok()) GTEST_SKIP() << relay.status();
  auto [client, proxy_client] = TcpPair();
  auto [proxy_server, server] = TcpPair();
  Stream c(proxy_client), s(proxy_server);
  std::thread t([&] { EXPECT_EQ((*relay)->Run(&c, &s), SockmapRelay::Result::kClosed); });
  // A socket that already got its FIN cannot join the map: splice first.
  for (int i = 0; i < 1000 && (*relay)->MapEntries() < 2; ++i) usleep(1000);
  ASSERT_EQ(write(client, "X", 1), 1);
  shutdown(client, SHUT_WR);
  EXPECT_EQ(ReadN(server, 1), "X");
  char b;
  EXPECT_EQ(read(server, &b, 1), 0);  // the FIN follows the data
  close(server);
  t.join();
  EXPECT_EQ((*relay)->MapEntries(), 0u);
  close(client);
}

}  // namespace
}  // namespace pgbranch::proxy
