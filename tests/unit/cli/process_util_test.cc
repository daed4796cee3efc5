#include "common/process_util.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"

// Finding processes by their command line (the local daemons are found this way).
namespace pgbranch::cli {
namespace {

TEST(PidsWithArgsTest, FindsEachInOnePassAndZeroForNone) {
  // A sleep whose argument no other process has: 30.<this test's pid> seconds.
  const std::string marker = absl::StrCat("30.", getpid());
  absl::StatusOr<pid_t> child = SpawnDetached({"/bin/sleep", marker}, "/dev/null", false);
  ASSERT_TRUE(child.ok()) << child.status();
  std::vector<pid_t> pids;
  // Until the child has exec'd (before, its command line is this test's).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    pids = PidsWithArgs({{"/bin/sleep", marker}, {marker, "/bin/sleep"}, {marker}});
    if (pids[0] != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  // In order; arguments must stand consecutively and in that order.
  EXPECT_EQ(pids, (std::vector<pid_t>{*child, 0, *child}));
  EXPECT_EQ(PidWithArgs({"/bin/sleep", marker}), *child);
  EXPECT_TRUE(PidsWithArgs({}).empty());
  kill(*child, SIGKILL);
  waitpid(*child, nullptr, 0);
  EXPECT_EQ(PidWithArgs({"/bin/sleep", marker}), 0);
}

}  // namespace
}  // namespace pgbranch::cli
