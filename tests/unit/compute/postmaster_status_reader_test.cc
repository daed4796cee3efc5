#include "compute/postmaster_status_reader.h"
#include "tests/unit/compute/scratch_dir.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace pgbranch::compute {
namespace {

// postmaster.pid as PostgreSQL 15 writes it; `status` empty: the first seven lines only.
std::string PidFile(const std::string& pid, const std::string& status) {
  std::string s = pid + "\n/data\n1700000000\n5432\n/run\n127.0.0.1\n  1234  5678\n";
  if (!status.empty()) s += status + "\n";
  return s;
}

// Rewrites the file in place (same inode), as the postmaster's AddToDataDirLockFile does.
void RewriteInPlace(const std::string& path, const std::string& content) {
  FILE* f = fopen(path.c_str(), "r+");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(fwrite(content.data(), 1, content.size(), f), content.size());
  fclose(f);
}

// Open descriptors of this process whose target is `path`.
int OpenDescriptorsOn(const std::string& path) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::filesystem::read_symlink(e.path(), ec).string() == path) ++n;
  }
  return n;
}

TEST(PostmasterStatusReaderTest, AbsentFileIsNoStatus) {
  ScratchDir dir("psr");
  PostmasterStatusReader reader(dir.path() + "/postmaster.pid", 42);
  EXPECT_EQ(reader.Read(), "");
}

TEST(PostmasterStatusReaderTest, SeesInPlaceRewritesThroughOneDescriptor) {
  ScratchDir dir("psr");
  const std::string path = dir.path() + "/postmaster.pid";
  std::ofstream(path) << PidFile("42", "");
  PostmasterStatusReader reader(path, 42);
  EXPECT_EQ(reader.Read(), "");  // no status line yet
  RewriteInPlace(path, PidFile("42", "starting"));
  EXPECT_EQ(reader.Read(), "starting");
  RewriteInPlace(path, PidFile("42", "ready   "));
  EXPECT_EQ(reader.Read(), "ready");
  // The reads shared one descriptor, still open: none was closed (and reopened) per read.
  EXPECT_EQ(OpenDescriptorsOn(path), 1);
}

TEST(PostmasterStatusReaderTest, AnotherPostmastersFileIsNotOursUntilReplaced) {
  ScratchDir dir("psr");
  const std::string path = dir.path() + "/postmaster.pid";
  std::ofstream(path) << PidFile("41", "ready   ");
  PostmasterStatusReader reader(path, 42);
  EXPECT_EQ(reader.Read(), "");
  // Replaced by a new file (another inode): found again by its path.
  std::filesystem::remove(path);
  std::ofstream(path) << PidFile("42", "ready   ");
  EXPECT_EQ(reader.Read(), "ready");
}

TEST(PostmasterStatusReaderTest, DescriptorIsClosedAfterTheReaderGoes) {
  ScratchDir dir("psr");
  const std::string path = dir.path() + "/postmaster.pid";
  std::ofstream(path) << PidFile("42", "standby ");
  {
    PostmasterStatusReader reader(path, 42);
    EXPECT_EQ(reader.Read(), "standby");
    EXPECT_EQ(OpenDescriptorsOn(path), 1);
  }
  // Closed in the background: soon, not necessarily at once.
  for (int i = 0; i < 5000 && OpenDescriptorsOn(path) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(OpenDescriptorsOn(path), 0);
}

}  // namespace
}  // namespace pgbranch::compute
