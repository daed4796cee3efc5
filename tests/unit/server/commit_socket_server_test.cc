// CommitSocketServer's connection threads: a finished connection's thread is joined at a later
// accept, so a client that reconnects again and again does not grow the server's thread list.
// (The commit path itself is tested against a real pageserver in commit_channel_test.)
#include "pageserver/server/commit_socket_server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "common/frame_io.h"
#include "gtest/gtest.h"

namespace pgbranch::pageserver {
namespace {

// Connects, sends a wrong hello (answered with an error without touching the engine) and reads
// until the server closes the connection.
void ConnectAndGetRefused(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  std::string hello;
  AppendFrame("not-a-commit-client\n", &hello);
  ASSERT_TRUE(WriteAll(fd, hello));
  char buf[4096];
  while (::read(fd, buf, sizeof(buf)) > 0) {
  }
  ::close(fd);
}

TEST(CommitSocketServerTest, ReapsFinishedConnectionThreads) {
  std::string path = ::testing::TempDir() + "/css-" + std::to_string(::getpid()) + ".sock";
  // No engine, auth or metrics: a refused hello reaches none of them.
  CommitSocketServer server(nullptr, nullptr, nullptr);
  absl::Status s = server.Start(path);
  ASSERT_TRUE(s.ok()) << s;
  for (int i = 0; i < 30; ++i) ConnectAndGetRefused(path);
  // A thread is joined at the first accept after it finished: reconnect until the last ones
  // have been reaped (each finishes right after closing its connection).
  size_t threads = server.ConnectionThreadsForTest();
  for (int i = 0; i < 200 && threads > 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ConnectAndGetRefused(path);
    threads = server.ConnectionThreadsForTest();
  }
  EXPECT_LE(threads, 2u) << "finished connection threads are kept until shutdown";
  server.Shutdown();
  EXPECT_EQ(server.ConnectionThreadsForTest(), 0u);
}

}  // namespace
}  // namespace pgbranch::pageserver
