// KernelReadAhead: which sysfs file belongs to a mount, and what Set writes there (against a
// fake sysfs directory; the real one is checked on a real mount in pagefs_reads_test).
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

class KernelReadAheadSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kernel-readahead-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    struct stat st;
    ASSERT_EQ(stat(root_.c_str(), &st), 0);
    bdi_dir_ = absl::StrCat(root_, "/", major(st.st_dev), ":", minor(st.st_dev));
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_, bdi_dir_;
};

TEST_F(KernelReadAheadSetTest, WritesTheWindowOfTheMountsDevice) {
  std::filesystem::create_directories(bdi_dir_);
  ASSERT_TRUE(KernelReadAhead::Set(root_, 4096, root_).ok());
  std::ifstream in(bdi_dir_ + "/read_ahead_kb");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "4096\n");
}

TEST_F(KernelReadAheadSetTest, NoSysfsEntryIsAClearError) {
  absl::Status s = KernelReadAhead::Set(root_, 4096, root_);  // no MAJOR:MINOR directory
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_NE(s.message().find("read_ahead_kb"), std::string::npos) << s;
}

TEST_F(KernelReadAheadSetTest, MissingMountPointIsAClearError) {
  absl::Status s = KernelReadAhead::Set(root_ + "/absent", 4096, root_);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("absent"), std::string::npos) << s;
}

}  // namespace
}  // namespace pgbranch::pagefs
