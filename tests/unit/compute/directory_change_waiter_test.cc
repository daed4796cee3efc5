#include "compute/directory_change_waiter.h"
#include "compute/postmaster_status_reader.h"
#include "tests/unit/compute/scratch_dir.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace pgbranch::compute {
namespace {

using std::chrono::minutes;

// Wait returning at all is the assertion: with a timeout of minutes, a change it missed would
// hold the test until ctest's own timeout fails it.
TEST(DirectoryChangeWaiterTest, WakesOnAWriteMadeBeforeTheWait) {
  ScratchDir dir("dcw");
  DirectoryChangeWaiter waiter(dir.path());
  ASSERT_TRUE(waiter.ok());
  std::ofstream(dir.path() + "/postmaster.pid") << "42\n";
  waiter.Wait(minutes(10));
}

TEST(DirectoryChangeWaiterTest, WakesOnARewriteFromAnotherThread) {
  ScratchDir dir("dcw");
  const std::string file = dir.path() + "/postmaster.pid";
  std::ofstream(file) << "starting\n";
  DirectoryChangeWaiter waiter(dir.path());
  ASSERT_TRUE(waiter.ok());
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ofstream(file, std::ios::trunc) << "ready\n";
  });
  waiter.Wait(minutes(10));
  writer.join();
}

size_t OpenDescriptors() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Waits (bounded) until every background close has happened.
void WaitForBackgroundCloses() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (PendingBackgroundCloses() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(PendingBackgroundCloses(), 0);
}

// The destructor leaves the close to a thread of its own: every descriptor is still closed.
TEST(DirectoryChangeWaiterTest, ClosesItsDescriptorAfterDestruction) {
  ScratchDir dir("dcw");
  // The earlier tests' waiters may still be closing theirs (counted in `before` otherwise).
  WaitForBackgroundCloses();
  const size_t before = OpenDescriptors();
  for (int i = 0; i < 20; ++i) {
    DirectoryChangeWaiter waiter(dir.path());
    ASSERT_TRUE(waiter.ok());
  }
  WaitForBackgroundCloses();
  EXPECT_EQ(OpenDescriptors(), before);
}

TEST(DirectoryChangeWaiterTest, WithoutTheDirectoryItSleeps) {
  DirectoryChangeWaiter waiter("/nonexistent/pgbranch-test-dir");
  EXPECT_FALSE(waiter.ok());
  waiter.Wait(std::chrono::milliseconds(1));
}

}  // namespace
}  // namespace pgbranch::compute
