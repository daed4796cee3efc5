// Deleting the pages of large sparse files (unlink, shrinking truncate, rename over a target):
// cost in proportion to the pages that exist, bounded commits, a consistent state at every LSN,
// orphans collected after a crash; EFBIG past the largest size; ctime of a surviving link.
#include <fcntl.h>
#include <sys/stat.h>

#include "gtest/gtest.h"
#include "pageserver/pagefs/pagefs.h"
#include "tests/unit/pagefs/fake_page_store.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kRoot = fs::kRootIno;
// pjdfstest's sparse size, the one that used to take 22 GB to unlink.
constexpr uint64_t kHugeSize = 999999999999999ull;

class PageFsDeleteTest : public ::testing::Test {
 protected:
  void SetUp() override { Mount(); }

  void Mount() {
    fs_ = std::make_unique<PageFs>(&store_, options_, &clock_);
    ASSERT_TRUE(fs_->Mount().ok());
  }
  // A crash: nothing is flushed, nothing is deleted at "unmount".
  void CrashAndMount() {
    fs_.reset();
    Mount();
  }
  uint64_t CreateFile(const std::string& name) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    EXPECT_EQ(fs_->Create(kRoot, name, 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &ino), 0);
    return ino;
  }
  int Truncate(uint64_t ino, uint64_t size) {
    fs::InodeAttr in, out;
    in.size = size;
    return fs_->SetAttr(ino, PageFs::kSetSize, in, &out);
  }
  // A sparse file of `size` bytes with one page of `fill` at each block of `blocks`, durable.
  uint64_t SparseFile(const std::string& name, uint64_t size, const std::vector<uint64_t>& blocks,
                      char fill = 'x') {
    uint64_t ino = CreateFile(name);
    EXPECT_EQ(Truncate(ino, size), 0);
    for (uint64_t b : blocks) {
      EXPECT_EQ(fs_->Write(ino, b * fs::kPageSize, std::string(fs::kPageSize, fill), false), 0);
    }
    EXPECT_EQ(fs_->Fsync(ino), 0);
    EXPECT_EQ(fs_->Release(ino), 0);
    return ino;
  }
  size_t LivePages(uint64_t ino) {
    fs::KeyRange r = fs::PageRange(ino);
    return store_.CountLive(r.start, r.end);
  }
  size_t LiveOrphans() {
    fs::KeyRange r = fs::AllOrphansRange();
    return store_.CountLive(r.start, r.end);
  }
  bool InodeStored(uint64_t ino) { return (*store_.Read(0, {fs::InodeKey(ino)}))[0].has_value(); }
  uint64_t Lookup(const std::string& name) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    return fs_->Lookup(kRoot, name, &attr, &ino) == 0 ? ino : 0;
  }

  FakePageStore store_;
  FakeClock clock_;
  PageFsOptions options_;
  std::unique_ptr<PageFs> fs_;
};

TEST_F(PageFsDeleteTest, UnlinkOfAHugeSparseFileCostsItsPagesNotItsSize) {
  uint64_t ino = SparseFile("f", kHugeSize, {0, 1000, 1ull << 30, kHugeSize / fs::kPageSize});
  ASSERT_EQ(LivePages(ino), 4u);
  uint64_t head = store_.head();
  ASSERT_EQ(fs_->Unlink(kRoot, "f"), 0);
  // The name (one commit), the four pages (one batch), the inode and its orphan record.
  EXPECT_EQ(store_.head(), head + 3);
  EXPECT_EQ(LivePages(ino), 0u);
  EXPECT_FALSE(InodeStored(ino));
  EXPECT_EQ(LiveOrphans(), 0u);
  EXPECT_EQ(Lookup("f"), 0u);
  EXPECT_EQ(fs_->Stats().pages_deleted, 4u);
}

TEST_F(PageFsDeleteTest, ASmallFileGoesInOneCommitWithoutAnOrphanRecord) {
  uint64_t ino = SparseFile("f", 3 * fs::kPageSize, {0, 1, 2});
  uint64_t head = store_.head();
  ASSERT_EQ(fs_->Unlink(kRoot, "f"), 0);
  EXPECT_EQ(store_.head(), head + 1);
  EXPECT_EQ(LivePages(ino), 0u);
  EXPECT_FALSE(InodeStored(ino));
  EXPECT_EQ(LiveOrphans(), 0u);
  // A short truncate too: one commit.
  ino = SparseFile("g", 5 * fs::kPageSize, {0, 1, 2, 3, 4});
  ASSERT_EQ(fs_->Open(ino, O_RDWR), 0);
  head = store_.head();
  ASSERT_EQ(Truncate(ino, 100), 0);
  EXPECT_EQ(store_.head(), head + 1);
  EXPECT_EQ(LivePages(ino), 1u);
}

TEST_F(PageFsDeleteTest, LargeDeletesAreSplitIntoBoundedCommits) {
  options_.delete_batch_keys = 3;
  Mount();
  std::vector<uint64_t> blocks;
  for (uint64_t b = 0; b < 10; ++b) blocks.push_back(b * 7);
  uint64_t ino = SparseFile("f", 100 * fs::kPageSize, blocks);
  store_.ResetMaxCommitKeys();
  uint64_t head = store_.head();
  ASSERT_EQ(fs_->Unlink(kRoot, "f"), 0);
  // The name; 10 pages in batches of 3, 3, 3, 1; the inode and record.
  EXPECT_EQ(store_.head(), head + 6);
  // The unlink commit: entry, inode, orphan record, parent. Every page batch: at most 3.
  EXPECT_LE(store_.max_commit_keys(), 4u);
  EXPECT_EQ(LivePages(ino), 0u);
  EXPECT_FALSE(InodeStored(ino));
}

TEST_F(PageFsDeleteTest, CrashInTheMiddleOfAnUnlinkLeavesAnOrphanTheNextMountCollects) {
  options_.delete_batch_keys = 2;
  Mount();
  uint64_t ino = SparseFile("big", 1ull << 40, {0, 5, 9, 1ull << 20, 1ull << 26, 1ull << 27});
  uint64_t keep = SparseFile("keep", 3 * fs::kPageSize, {0, 1, 2}, 'k');
  uint64_t head = store_.head();
  store_.FailAfterCommits(2);  // the unlink commit and one batch land, then the "crash"
  EXPECT_EQ(fs_->Unlink(kRoot, "big"), 0);  // the name is durably gone
  store_.FailAfterCommits(-1);
  EXPECT_EQ(store_.head(), head + 2);

  // Every state from the unlink commit on: no name reaches the inode; its record remains.
  CrashAndMount();
  EXPECT_EQ(Lookup("big"), 0u);
  EXPECT_EQ(LivePages(ino), 4u);
  EXPECT_EQ(LiveOrphans(), 1u);
  ASSERT_TRUE(fs_->CollectOrphans().ok());
  EXPECT_EQ(LivePages(ino), 0u);
  EXPECT_FALSE(InodeStored(ino));
  EXPECT_EQ(LiveOrphans(), 0u);
  EXPECT_EQ(fs_->Stats().orphans_collected, 1u);
  // The rest of the tree is untouched.
  ASSERT_EQ(Lookup("keep"), keep);
  ASSERT_EQ(fs_->Open(keep, O_RDONLY), 0);
  std::string data;
  ASSERT_EQ(fs_->Read(keep, 0, 3 * fs::kPageSize, &data), 0);
  EXPECT_EQ(data, std::string(3 * fs::kPageSize, 'k'));
}

TEST_F(PageFsDeleteTest, AnOpenUnlinkedFileLeftByACrashIsCollected) {
  uint64_t ino = CreateFile("tmp");
  ASSERT_EQ(fs_->Write(ino, 0, std::string(3 * fs::kPageSize, 't'), false), 0);
  ASSERT_EQ(fs_->Fsync(ino), 0);
  ASSERT_EQ(fs_->Unlink(kRoot, "tmp"), 0);  // still open: it lives on
  EXPECT_EQ(LivePages(ino), 3u);
  EXPECT_EQ(LiveOrphans(), 1u);
  CrashAndMount();  // before the last close
  ASSERT_TRUE(fs_->CollectOrphans().ok());
  EXPECT_EQ(LivePages(ino), 0u);
  EXPECT_FALSE(InodeStored(ino));
  EXPECT_EQ(LiveOrphans(), 0u);
}

TEST_F(PageFsDeleteTest, ShrinkingTruncateOfAHugeSparseFileDeletesOnlyThePagesPastTheEnd) {
  options_.delete_batch_keys = 2;
  Mount();
  uint64_t ino = SparseFile("f", kHugeSize, {0, 1, 2, 3, 1ull << 30, (1ull << 30) + 1});
  ASSERT_EQ(fs_->Open(ino, O_RDWR), 0);
  store_.ResetMaxCommitKeys();
  uint64_t new_size = 2 * fs::kPageSize + 100;
  ASSERT_EQ(Truncate(ino, new_size), 0);
  EXPECT_LE(store_.max_commit_keys(), 2u);
  EXPECT_EQ(LivePages(ino), 3u);  // blocks 0, 1 and the cut block 2
  std::string data;
  ASSERT_EQ(fs_->Read(ino, 0, 1 << 20, &data), 0);
  EXPECT_EQ(data, std::string(new_size, 'x'));
  // Growing again shows zeros past the cut, never the old pages.
  ASSERT_EQ(Truncate(ino, (1ull << 30) * fs::kPageSize + 10), 0);
  ASSERT_EQ(fs_->Read(ino, (1ull << 30) * fs::kPageSize, 10, &data), 0);
  EXPECT_EQ(data, std::string(10, '\0'));
  ASSERT_EQ(fs_->Read(ino, new_size, 10, &data), 0);
  EXPECT_EQ(data, std::string(10, '\0'));
}

TEST_F(PageFsDeleteTest, CrashInTheMiddleOfATruncateKeepsTheOldSizeAndNoPagePastTheSize) {
  options_.delete_batch_keys = 2;
  Mount();
  uint64_t ino = SparseFile("f", 8 * fs::kPageSize, {0, 1, 2, 3, 4, 5, 6, 7});
  ASSERT_EQ(fs_->Open(ino, O_RDWR), 0);
  store_.FailAfterCommits(1);  // one batch of the pages past the new end, then the "crash"
  EXPECT_EQ(Truncate(ino, fs::kPageSize), EIO);
  store_.FailAfterCommits(-1);
  CrashAndMount();
  ino = Lookup("f");
  ASSERT_NE(ino, 0u);
  fs::InodeAttr attr;
  ASSERT_EQ(fs_->GetAttr(ino, &attr), 0);
  EXPECT_EQ(attr.size, 8 * fs::kPageSize);  // the size shrinks last
  EXPECT_EQ(LivePages(ino), 6u);            // pages 1 and 2 went first
  ASSERT_EQ(fs_->Open(ino, O_RDWR), 0);
  std::string data;
  ASSERT_EQ(fs_->Read(ino, 0, fs::kPageSize, &data), 0);
  EXPECT_EQ(data, std::string(fs::kPageSize, 'x'));  // below the new size: intact
  // The truncate, repeated (as PostgreSQL's recovery would), completes.
  ASSERT_EQ(Truncate(ino, fs::kPageSize), 0);
  EXPECT_EQ(LivePages(ino), 1u);
}

TEST_F(PageFsDeleteTest, SizesPastTheLargestFileSizeGetEfbig) {
  uint64_t ino = CreateFile("f");
  EXPECT_EQ(Truncate(ino, fs::kMaxFileSize + 1), EFBIG);
  EXPECT_EQ(Truncate(ino, ~0ull), EFBIG);
  EXPECT_EQ(fs_->Write(ino, fs::kMaxFileSize - 2, "12345", false), EFBIG);
  EXPECT_EQ(fs_->Write(ino, ~0ull - 1, "12345", false), EFBIG);  // no wrap-around
  EXPECT_EQ(fs_->Fallocate(ino, 0, fs::kMaxFileSize, 1), EFBIG);
  EXPECT_EQ(fs_->Fallocate(ino, 0, 10, ~0ull - 5), EFBIG);
  fs::InodeAttr attr;
  ASSERT_EQ(fs_->GetAttr(ino, &attr), 0);
  EXPECT_EQ(attr.size, 0u);  // nothing changed
  // The largest size itself works, and so does deleting such a file.
  ASSERT_EQ(fs_->Write(ino, fs::kMaxFileSize - 3, "end", false), 0);
  ASSERT_EQ(fs_->Fsync(ino), 0);
  ASSERT_EQ(fs_->GetAttr(ino, &attr), 0);
  EXPECT_EQ(attr.size, fs::kMaxFileSize);
  std::string data;
  ASSERT_EQ(fs_->Read(ino, fs::kMaxFileSize - 3, 10, &data), 0);
  EXPECT_EQ(data, "end");
  ASSERT_EQ(fs_->Release(ino), 0);
  ASSERT_EQ(fs_->Unlink(kRoot, "f"), 0);
  EXPECT_EQ(LivePages(ino), 0u);
}

TEST_F(PageFsDeleteTest, RenameOverATargetWithASecondLinkUpdatesTheSurvivorsCtime) {
  uint64_t target = CreateFile("target");
  fs::InodeAttr attr;
  ASSERT_EQ(fs_->Link(target, kRoot, "other", &attr), 0);
  ASSERT_EQ(fs_->Release(target), 0);
  CreateFile("src");
  ASSERT_EQ(fs_->GetAttr(target, &attr), 0);
  int64_t before = attr.ctime_ns;
  clock_.Advance(5'000'000);
  ASSERT_EQ(fs_->Rename(kRoot, "src", kRoot, "target", 0), 0);
  ASSERT_EQ(fs_->GetAttr(target, &attr), 0);
  EXPECT_EQ(attr.nlink, 1u);
  EXPECT_EQ(attr.ctime_ns, before + 5'000'000'000);
  // Durably so.
  CrashAndMount();
  ASSERT_EQ(Lookup("other"), target);
  ASSERT_EQ(fs_->GetAttr(target, &attr), 0);
  EXPECT_EQ(attr.nlink, 1u);
  EXPECT_EQ(attr.ctime_ns, before + 5'000'000'000);
  EXPECT_EQ(LiveOrphans(), 0u);
}

}  // namespace
}  // namespace pgbranch::pagefs
