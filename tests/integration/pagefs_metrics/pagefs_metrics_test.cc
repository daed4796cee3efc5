// pagefs's metrics on a real pagefs mount over a real pageserver (needs root and /dev/fuse).
//
// An FSYNC is answered by whichever thread comes first: the one that read the pageserver's
// answer (as soon as the commit is durable) or the FSYNC's own (errors, nothing to wait for).
// Its latency ends at that reply and is recorded by the thread that replied, after replying:
// exactly once per FSYNC, with the result its caller got.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/net_util.h"
#include "gtest/gtest.h"
#include "tests/support/pagefs_server_fixture.h"

namespace pgbranch::testing {
namespace {

// The value of the sample `series` (name and labels, as exposed) in a /metrics text; -1 if absent.
double Sample(const std::string& text, const std::string& series) {
  const std::string key = series + " ";
  size_t pos = 0;
  while ((pos = text.find(key, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n')
      return std::strtod(text.c_str() + pos + key.size(), nullptr);
    pos += key.size();
  }
  return -1;
}

class PagefsMetricsTest : public PagefsServerTest {};

TEST_F(PagefsMetricsTest, EachFsyncIsTimedOnceWithTheResultItsCallerGot) {
  absl::StatusOr<int> port = net::FreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  auto mount = Mount({"--metrics-listen", absl::StrCat("127.0.0.1:", *port)});
  ASSERT_NE(mount, nullptr);
  int fd = open(Path("f").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  // Each with a page to commit (answered once durable), then with nothing dirty.
  constexpr int kCommitting = 20, kClean = 5;
  const std::string page(8192, 'x');
  for (int i = 0; i < kCommitting; ++i) {
    ASSERT_EQ(pwrite(fd, page.data(), page.size(), i * 8192), static_cast<ssize_t>(page.size()));
    ASSERT_EQ(fsync(fd), 0) << strerror(errno);
  }
  for (int i = 0; i < kClean; ++i) ASSERT_EQ(fsync(fd), 0) << strerror(errno);
  close(fd);

  const std::string count = R"(pgbranch_pagefs_operation_duration_seconds_count{op="fsync"})";
  const std::string ok = R"(pgbranch_pagefs_operations_total{op="fsync",result="ok"})";
  const std::string error = R"(pgbranch_pagefs_operations_total{op="fsync",result="error"})";
  // The replying thread records after its reply: the last one may lag the fsync's return.
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    absl::StatusOr<std::string> body = net::HttpGet(*port, "/metrics");
    ASSERT_TRUE(body.ok()) << body.status();
    text = *body;
    if (Sample(text, count) >= kCommitting + kClean) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Sample(text, count), kCommitting + kClean) << text;
  EXPECT_EQ(Sample(text, ok), kCommitting + kClean) << text;
  EXPECT_LE(Sample(text, error), 0) << text;
  EXPECT_GT(Sample(text, R"(pgbranch_pagefs_operation_duration_seconds_sum{op="fsync"})"), 0);
  EXPECT_EQ(mount->Unmount(), 0);
}

}  // namespace
}  // namespace pgbranch::testing
