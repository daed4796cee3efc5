// Read-ahead of sequential reads into the clean page cache, and the invariant that keeps the cache
// clean: a page fetched (asked for or read ahead) never replaces a newer write. And listings that
// warm the lookups of their entries.
#include <fcntl.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/unit/pagefs/one_file_fixture.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kRoot = fs::kRootIno;
constexpr uint64_t kPage = fs::kPageSize;

using PageFsReadAheadTest = OneFileTest;

TEST_F(PageFsReadAheadTest, SequentialReadsFetchAheadInOneRpc) {
  SetUpFile(64);
  uint64_t reads = store_.reads();
  ExpectPages(0, 2);  // the first read of the file: no read-ahead yet
  ExpectPages(2, 2);  // sequential: fetches 4..63 too, in the same RPC
  EXPECT_EQ(store_.reads(), reads + 2);
  for (uint64_t b = 4; b < 64; b += 2) ExpectPages(b, 2);
  EXPECT_EQ(store_.reads(), reads + 2);  // all from the cache
  EXPECT_EQ(fs_->Stats().readahead_pages, 60u);
}

TEST_F(PageFsReadAheadTest, OffReadsOneRpcPerMiss) {
  PageFsOptions options;
  options.readahead_pages = 0;
  SetUpFile(16, options);
  uint64_t reads = store_.reads();
  for (uint64_t b = 0; b < 16; b += 2) ExpectPages(b, 2);
  EXPECT_EQ(store_.reads(), reads + 8);
  EXPECT_EQ(fs_->Stats().readahead_pages, 0u);
}

TEST_F(PageFsReadAheadTest, RandomReadsDoNotReadAhead) {
  SetUpFile(64);
  uint64_t reads = store_.reads();
  for (uint64_t b : {40, 3, 20, 7}) ExpectPages(b, 1);
  EXPECT_EQ(store_.reads(), reads + 4);
  EXPECT_EQ(fs_->Stats().readahead_pages, 0u);
}

TEST_F(PageFsReadAheadTest, StopsAtTheEndOfTheFile) {
  SetUpFile(5);
  ExpectPages(0, 1);
  ExpectPages(1, 1);
  EXPECT_EQ(fs_->Stats().readahead_pages, 3u);  // blocks 2, 3 and 4: nothing past the end
  ExpectPages(2, 3);
}

// Waits (at most 10 s) until the mount's read-ahead has cached `pages` pages in all.
bool WaitForReadAhead(PageFs* fs, uint64_t pages) {
  for (int i = 0; i < 10000 && fs->Stats().readahead_pages < pages; ++i) usleep(1000);
  return fs->Stats().readahead_pages >= pages;
}

// A sequential reader within half a window of the read-ahead's end has the next window fetched
// in the background: when it gets there, the pages are cached and it does not wait for an RPC.
TEST_F(PageFsReadAheadTest, TheNextWindowIsFetchedBeforeTheReaderGetsThere) {
  PageFsOptions options;
  options.readahead_pages = 16;
  SetUpFile(64, options);
  uint64_t reads = store_.reads();
  ExpectPages(0, 1);
  ExpectPages(1, 1);  // sequential miss: block 1 and the window 2..17, one RPC
  EXPECT_EQ(store_.reads(), reads + 2);
  EXPECT_EQ(fs_->Stats().readahead_pages, 16u);
  for (uint64_t b = 2; b < 10; ++b) ExpectPages(b, 1);  // block 9: 8 pages (half) before 18
  ASSERT_TRUE(WaitForReadAhead(fs_.get(), 32));         // 18..33 in the background
  EXPECT_EQ(store_.reads(), reads + 3);
  for (uint64_t b = 10; b < 26; ++b) ExpectPages(b, 1);  // block 25 queues 34..49
  ASSERT_TRUE(WaitForReadAhead(fs_.get(), 48));
  for (uint64_t b = 26; b < 41; ++b) ExpectPages(b, 1);
  EXPECT_EQ(store_.reads(), reads + 4);  // no read of the reader's own since block 1
  EXPECT_EQ(fs_->Stats().cache_misses, 2u);
}

// A write that lands while a background window is being fetched wins, as in the foreground.
TEST_F(PageFsReadAheadTest, AWriteDuringABackgroundWindowWins) {
  PageFsOptions options;
  options.readahead_pages = 16;
  SetUpFile(64, options);
  ExpectPages(0, 1);
  ExpectPages(1, 1);
  store_.set_after_read([this] { ASSERT_EQ(fs_->Write(ino_, 20 * kPage, PageOf('Z'), false), 0); });
  for (uint64_t b = 2; b < 10; ++b) ExpectPages(b, 1);  // queues 18..33; the write hits 20
  for (int i = 0; i < 10000 && store_.reads() < 4; ++i) usleep(1000);
  for (uint64_t b = 10; b < 20; ++b) ExpectPages(b, 1);
  ExpectPages(20, 1, 'Z');
  ASSERT_EQ(fs_->Fsync(ino_), 0);
  ExpectPages(20, 1, 'Z');
  ExpectPages(21, 1);
}

// A file read again from its start reads ahead again (the first run's read-ahead end is not kept).
TEST_F(PageFsReadAheadTest, ASecondSequentialRunReadsAheadAgain) {
  PageFsOptions options;
  options.readahead_pages = 16;
  options.cache_bytes = 0;  // nothing stays cached: each run fetches again
  SetUpFile(64, options);
  for (int run = 0; run < 2; ++run) {
    uint64_t reads = store_.reads();
    ExpectPages(0, 1);
    ExpectPages(1, 1);
    EXPECT_EQ(store_.reads(), reads + 2) << "run " << run;
  }
}

// The stale-prefetch race: a write lands after the read-ahead RPC read its values and before they
// are inserted. The write must win, in the buffer and, once flushed, in the cache.
TEST_F(PageFsReadAheadTest, AWriteDuringTheReadAheadWins) {
  SetUpFile(64);
  ExpectPages(0, 2);
  store_.set_after_read([this] { ASSERT_EQ(fs_->Write(ino_, 10 * kPage, PageOf('Z'), false), 0); });
  ExpectPages(2, 2);  // read-ahead of 4..63 raced with the write of block 10
  ExpectPages(10, 1, 'Z');
  ASSERT_EQ(fs_->Fsync(ino_), 0);
  ExpectPages(10, 1, 'Z');
  ExpectPages(11, 1);
}

TEST_F(PageFsReadAheadTest, AWriteAndFlushDuringTheReadAheadWins) {
  SetUpFile(64);
  ExpectPages(0, 2);
  store_.set_after_read([this] {
    ASSERT_EQ(fs_->Write(ino_, 10 * kPage, PageOf('Z'), false), 0);
    ASSERT_EQ(fs_->Fsync(ino_), 0);  // committed and cached: only the cache holds it now
  });
  ExpectPages(2, 2);
  ExpectPages(10, 1, 'Z');
  // A fresh mount agrees with what this one serves.
  Mount({});
  fs::InodeAttr a;
  ASSERT_EQ(fs_->Lookup(kRoot, "f", &a, &ino_), 0);
  ASSERT_EQ(fs_->Open(ino_, O_RDONLY), 0);
  ExpectPages(10, 1, 'Z');
}

TEST_F(PageFsReadAheadTest, ATruncateDuringTheReadAheadWins) {
  SetUpFile(64);
  ExpectPages(0, 2);
  store_.set_after_read([this] {
    fs::InodeAttr in, out;
    in.size = 8 * kPage;
    ASSERT_EQ(fs_->SetAttr(ino_, PageFs::kSetSize, in, &out), 0);
    in.size = 64 * kPage;  // grow again: blocks 8.. are holes now, never the old pages
    ASSERT_EQ(fs_->SetAttr(ino_, PageFs::kSetSize, in, &out), 0);
  });
  ExpectPages(2, 2);
  std::string out;
  ASSERT_EQ(fs_->Read(ino_, 20 * kPage, kPage, &out), 0);
  EXPECT_EQ(out, std::string(kPage, '\0'));
}

TEST_F(PageFsReadAheadTest, ReadOnlyMountReadsAheadAtItsLsn) {
  SetUpFile(32);
  uint64_t lsn = store_.head();
  ASSERT_EQ(fs_->Write(ino_, 20 * kPage, PageOf('Z'), false), 0);
  ASSERT_EQ(fs_->Fsync(ino_), 0);
  PageFsOptions ro;
  ro.read_only = true;
  ro.lsn = lsn;
  Mount(ro);
  fs::InodeAttr a;
  ASSERT_EQ(fs_->Lookup(kRoot, "f", &a, &ino_), 0);
  ASSERT_EQ(fs_->Open(ino_, O_RDONLY), 0);
  ExpectPages(0, 2);
  ExpectPages(2, 2);
  EXPECT_GT(fs_->Stats().readahead_pages, 0u);
  for (uint64_t b = 4; b < 32; ++b) ExpectPages(b, 1);  // block 20 as of the LSN
}

}  // namespace
}  // namespace pgbranch::pagefs

namespace pgbranch::pagefs {
namespace {

class PageFsListingTest : public ::testing::Test {
 protected:
  void Mount() {
    fs_.reset();
    fs_ = std::make_unique<PageFs>(&store_, PageFsOptions{}, &clock_);
    ASSERT_TRUE(fs_->Mount().ok());
  }
  FakePageStore store_;
  FakeClock clock_;
  std::unique_ptr<PageFs> fs_;
};

// A listing loads the entries' inodes in one RPC: the lookups of every entry that follow (as in
// PostgreSQL's fsync walk of the data directory after a crash) cost no round trip.
TEST_F(PageFsListingTest, ListingWarmsTheLookupsOfItsEntries) {
  Mount();
  fs::InodeAttr attr;
  uint64_t dir = 0;
  ASSERT_EQ(fs_->Mkdir(kRoot, "d", 0755, 0, 0, &attr, &dir), 0);
  for (int i = 0; i < 50; ++i) {
    uint64_t ino = 0;
    std::string name = "f" + std::to_string(i);
    ASSERT_EQ(fs_->Create(dir, name, 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &ino), 0);
    ASSERT_EQ(fs_->Write(ino, 0, std::string(i + 1, 'x'), false), 0);
    ASSERT_EQ(fs_->Fsync(ino), 0);
  }
  Mount();
  ASSERT_EQ(fs_->Lookup(kRoot, "d", &attr, &dir), 0);
  std::vector<DirListing> listing;
  uint64_t reads = store_.reads();
  ASSERT_EQ(fs_->ReadDir(dir, &listing), 0);
  EXPECT_EQ(listing.size(), 52u);
  EXPECT_EQ(store_.reads(), reads + 1);  // one Read RPC for the 50 inodes
  for (int i = 0; i < 50; ++i) {
    uint64_t ino = 0;
    ASSERT_EQ(fs_->Lookup(dir, "f" + std::to_string(i), &attr, &ino), 0);
    EXPECT_EQ(attr.size, static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ(store_.reads(), reads + 1);
  // Namespace changes after the listing still win over what it cached.
  ASSERT_EQ(fs_->Unlink(dir, "f3"), 0);
  uint64_t ino = 0;
  EXPECT_EQ(fs_->Lookup(dir, "f3", &attr, &ino), ENOENT);
  ASSERT_EQ(fs_->Rename(dir, "f4", dir, "g4", 0), 0);
  EXPECT_EQ(fs_->Lookup(dir, "f4", &attr, &ino), ENOENT);
  ASSERT_EQ(fs_->Lookup(dir, "g4", &attr, &ino), 0);
  EXPECT_EQ(attr.size, 5u);
}

// A listing after a namespace change does not resurrect what the change removed.
TEST_F(PageFsListingTest, ListingAfterAnUnlinkDoesNotBringItBack) {
  Mount();
  fs::InodeAttr attr;
  uint64_t a = 0, b = 0;
  ASSERT_EQ(fs_->Create(kRoot, "a", 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &a), 0);
  ASSERT_EQ(fs_->Create(kRoot, "b", 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &b), 0);
  ASSERT_EQ(fs_->Unlink(kRoot, "a"), 0);
  std::vector<DirListing> listing;
  ASSERT_EQ(fs_->ReadDir(kRoot, &listing), 0);
  EXPECT_EQ(listing.size(), 3u);
  uint64_t ino = 0;
  EXPECT_EQ(fs_->Lookup(kRoot, "a", &attr, &ino), ENOENT);
  EXPECT_EQ(fs_->Lookup(kRoot, "b", &attr, &ino), 0);
}

}  // namespace
}  // namespace pgbranch::pagefs
