// A PageFs over a FakePageStore with one committed file "f" whose pages are not cached: the
// fixture of the tests of what reaches the clean page cache without a write (read-ahead,
// prefetch). Page b of the file holds Fill(b).
#pragma once

#include <fcntl.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "pageserver/pagefs/pagefs.h"
#include "tests/unit/pagefs/fake_page_store.h"

namespace pgbranch::pagefs {

inline constexpr uint64_t kFixtureRoot = fs::kRootIno;
inline constexpr uint64_t kFixturePage = fs::kPageSize;

inline std::string PageOf(char c) { return std::string(kFixturePage, c); }
inline char Fill(uint64_t block) { return static_cast<char>('a' + block % 26); }

class OneFileTest : public ::testing::Test {
 protected:
  // A file of `pages` pages, committed; then a fresh mount with the file looked up and open
  // (loaded) but none of its pages cached.
  void SetUpFile(uint64_t pages, PageFsOptions options = {}) {
    Mount(options);
    fs::InodeAttr attr;
    ASSERT_EQ(fs_->Create(kFixtureRoot, "f", 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &ino_),
              0);
    for (uint64_t b = 0; b < pages; ++b) {
      ASSERT_EQ(fs_->Write(ino_, b * kFixturePage, PageOf(Fill(b)), false), 0);
    }
    ASSERT_EQ(fs_->Fsync(ino_), 0);
    Mount(options);
    fs::InodeAttr a;
    ASSERT_EQ(fs_->Lookup(kFixtureRoot, "f", &a, &ino_), 0);
    ASSERT_EQ(fs_->Open(ino_, O_RDWR), 0);
  }
  // Drops the mount (its caches) and mounts again over the same store.
  void Mount(PageFsOptions options) {
    fs_.reset();
    fs_ = std::make_unique<PageFs>(&store_, options, &clock_);
    ASSERT_TRUE(fs_->Mount().ok());
  }
  // Reads `n` pages from block `b`; checks they hold `expect` (Fill by default).
  void ExpectPages(uint64_t b, uint64_t n, char expect = 0) {
    std::string out;
    ASSERT_EQ(fs_->Read(ino_, b * kFixturePage, n * kFixturePage, &out), 0);
    ASSERT_EQ(out.size(), n * kFixturePage);
    for (uint64_t i = 0; i < n; ++i) {
      char want = expect != 0 ? expect : Fill(b + i);
      EXPECT_EQ(out.substr(i * kFixturePage, kFixturePage), PageOf(want)) << "block " << b + i;
    }
  }

  FakePageStore store_;
  FakeClock clock_;
  std::unique_ptr<PageFs> fs_;
  uint64_t ino_ = 0;
};

}  // namespace pgbranch::pagefs
