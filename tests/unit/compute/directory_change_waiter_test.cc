#include "compute/directory_change_waiter.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace pgbranch::compute {
namespace {

using std::chrono::minutes;

class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dcw-XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Wait returning at all is the assertion: with a timeout of minutes, a change it missed would
// hold the test until ctest's own timeout fails it.
TEST(DirectoryChangeWaiterTest, WakesOnAWriteMadeBeforeTheWait) {
  ScratchDir dir;
  DirectoryChangeWaiter waiter(dir.path());
  ASSERT_TRUE(waiter.ok());
  std::ofstream(dir.path() + "/postmaster.pid") << "42\n";
  waiter.Wait(minutes(10));
}

TEST(DirectoryChangeWaiterTest, WakesOnARewriteFromAnotherThread) {
  ScratchDir dir;
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

TEST(DirectoryChangeWaiterTest, WithoutTheDirectoryItSleeps) {
  DirectoryChangeWaiter waiter("/nonexistent/pgbranch-test-dir");
  EXPECT_FALSE(waiter.ok());
  waiter.Wait(std::chrono::milliseconds(1));
}

}  // namespace
}  // namespace pgbranch::compute
