// KernelReadAhead: which device a mount is (from mountinfo text, never through the mount), and
// what Set writes (against a fake sysfs directory; the real one is checked on a real mount in
// pagefs_reads_test).
#include "pageserver/pagefs/kernel_readahead.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pgbranch::pagefs {
namespace {

TEST(KernelReadAheadTest, SysfsPathNamesTheDevice) {
  EXPECT_EQ(KernelReadAhead::SysfsPath(makedev(0, 58)), "/sys/class/bdi/0:58/read_ahead_kb");
  EXPECT_EQ(KernelReadAhead::SysfsPath(makedev(259, 3)), "/sys/class/bdi/259:3/read_ahead_kb");
}

TEST(KernelReadAheadTest, DeviceOfFindsTheLastMountAtThePath) {
  const std::string mountinfo =
      "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
      "98 22 0:57 / /tmp/x/mnt rw,nosuid shared:50 - fuse.pagefs pagefs:old rw\n"
      "99 22 0:58 / /tmp/x/mnt2 rw,nosuid shared:51 - fuse.pagefs pagefs:b rw\n"
      "100 98 0:59 / /tmp/x/mnt rw,nosuid shared:52 - fuse.pagefs pagefs:new rw\n"
      "101 22 0:60 / /tmp/a\\040b rw - fuse.pagefs pagefs:c rw\n";
  EXPECT_EQ(*KernelReadAhead::DeviceOf(mountinfo, "/tmp/x/mnt"), "0:59");  // hides 0:57
  EXPECT_EQ(*KernelReadAhead::DeviceOf(mountinfo, "/tmp/x/mnt2"), "0:58");
  EXPECT_EQ(*KernelReadAhead::DeviceOf(mountinfo, "/tmp/a b"), "0:60");  // \040 is a space
  absl::StatusOr<std::string> none = KernelReadAhead::DeviceOf(mountinfo, "/tmp/x");
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();
  EXPECT_NE(none.status().message().find("/tmp/x"), std::string::npos);
}

TEST(KernelReadAheadTest, DeviceOfReadsThisProcesssMountinfo) {
  // The root of this process's mounts is in its own mountinfo, with the device stat(2) reports.
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  struct stat st;
  ASSERT_EQ(stat("/", &st), 0);
  absl::StatusOr<std::string> device = KernelReadAhead::DeviceOf(text.str(), "/");
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(*device, absl::StrCat(major(st.st_dev), ":", minor(st.st_dev)));
}

class KernelReadAheadSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kernel-readahead-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
};

TEST_F(KernelReadAheadSetTest, WritesTheWindowOfTheDevice) {
  std::filesystem::create_directories(root_ + "/0:58");
  ASSERT_TRUE(KernelReadAhead::Set("0:58", 4096, root_).ok());
  std::ifstream in(root_ + "/0:58/read_ahead_kb");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "4096\n");
}

TEST_F(KernelReadAheadSetTest, NoSysfsEntryIsAClearError) {
  absl::Status s = KernelReadAhead::Set("0:58", 4096, root_);  // no 0:58 directory
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_NE(s.message().find("read_ahead_kb"), std::string::npos) << s;
}

}  // namespace
}  // namespace pgbranch::pagefs
