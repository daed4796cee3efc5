#include "pageserver/pagefs/pagefs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "tests/unit/pagefs/fake_page_store.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kRoot = fs::kRootIno;

class PageFsTest : public ::testing::Test {
 protected:
  void SetUp() override { Remount(); }

  void Remount(PageFsOptions options = {}) {
    if (fs_) {
      ASSERT_TRUE(fs_->FlushAll().ok());
    }
    fs_ = std::make_unique<PageFs>(&store_, options, &clock_);
    ASSERT_TRUE(fs_->Mount().ok());
  }
  uint64_t CreateFile(uint64_t parent, const std::string& name) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    EXPECT_EQ(fs_->Create(parent, name, 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &ino), 0);
    return ino;
  }
  std::string ReadAll(uint64_t ino) {
    std::string out;
    EXPECT_EQ(fs_->Read(ino, 0, 1 << 24, &out), 0);
    return out;
  }
  uint64_t Lookup(uint64_t parent, const std::string& name) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    return fs_->Lookup(parent, name, &attr, &ino) == 0 ? ino : 0;
  }

  FakePageStore store_;
  FakeClock clock_;
  std::unique_ptr<PageFs> fs_;
};

TEST_F(PageFsTest, WritesAreBufferedUntilFsyncThenDurable) {
  uint64_t ino = CreateFile(kRoot, "f");
  uint64_t head = store_.head();
  ASSERT_EQ(fs_->Write(ino, 0, "hello", false), 0);
  EXPECT_EQ(store_.head(), head);  // buffered
  EXPECT_EQ(ReadAll(ino), "hello");
  ASSERT_EQ(fs_->Fsync(ino), 0);
  EXPECT_EQ(store_.head(), head + 1);  // one commit for data + attributes
  fs_.reset();                         // a crash: nothing is flushed at "unmount"
  fs_ = std::make_unique<PageFs>(&store_, PageFsOptions{}, &clock_);
  ASSERT_TRUE(fs_->Mount().ok());
  ino = Lookup(kRoot, "f");
  ASSERT_NE(ino, 0u);
  ASSERT_EQ(fs_->Open(ino, O_RDONLY), 0);
  EXPECT_EQ(ReadAll(ino), "hello");
}

TEST_F(PageFsTest, UnsyncedWritesAreLostInACrashButNamespaceChangesAreNot) {
  uint64_t ino = CreateFile(kRoot, "f");
  ASSERT_EQ(fs_->Write(ino, 0, "lost", false), 0);
  fs_.reset();
  fs_ = std::make_unique<PageFs>(&store_, PageFsOptions{}, &clock_);
  ASSERT_TRUE(fs_->Mount().ok());
  ino = Lookup(kRoot, "f");
  ASSERT_NE(ino, 0u);
  ASSERT_EQ(fs_->Open(ino, O_RDONLY), 0);
  EXPECT_EQ(ReadAll(ino), "");
}

TEST_F(PageFsTest, PartialPagesHolesAndTruncation) {
  uint64_t ino = CreateFile(kRoot, "f");
  std::string block(fs::kPageSize, 'a');
  ASSERT_EQ(fs_->Write(ino, 0, block, false), 0);
  ASSERT_EQ(fs_->Write(ino, 3 * fs::kPageSize + 100, "tail", false), 0);  // a hole in between
  ASSERT_EQ(fs_->Fsync(ino), 0);
  Remount();
  ino = Lookup(kRoot, "f");
  ASSERT_EQ(fs_->Open(ino, O_RDWR), 0);
  std::string all = ReadAll(ino);
  ASSERT_EQ(all.size(), 3 * fs::kPageSize + 104);
  EXPECT_EQ(all.substr(0, fs::kPageSize), block);
  EXPECT_EQ(all.substr(fs::kPageSize, 2 * fs::kPageSize), std::string(2 * fs::kPageSize, '\0'));
  EXPECT_EQ(all.substr(3 * fs::kPageSize + 100), "tail");
  ASSERT_EQ(fs_->Write(ino, 10, "XY", false), 0);  // read-modify-write of a stored page
  fs::InodeAttr in, out;
  in.size = 11;
  ASSERT_EQ(fs_->SetAttr(ino, PageFs::kSetSize, in, &out), 0);
  in.size = 2 * fs::kPageSize;  // grow again: the cut bytes must read as zeros
  ASSERT_EQ(fs_->SetAttr(ino, PageFs::kSetSize, in, &out), 0);
  ASSERT_EQ(fs_->Fsync(ino), 0);
  Remount();
  ino = Lookup(kRoot, "f");
  ASSERT_EQ(fs_->Open(ino, O_RDONLY), 0);
  std::string want = std::string(10, 'a') + "X" + std::string(2 * fs::kPageSize - 11, '\0');
  EXPECT_EQ(ReadAll(ino), want);
}

TEST_F(PageFsTest, RenameIsAtomicAndReplacesTheTarget) {
  uint64_t a = CreateFile(kRoot, "a");
  uint64_t b = CreateFile(kRoot, "b");
  ASSERT_EQ(fs_->Write(a, 0, "new", false), 0);
  ASSERT_EQ(fs_->Fsync(a), 0);
  ASSERT_EQ(fs_->Write(b, 0, "old", false), 0);
  ASSERT_EQ(fs_->Fsync(b), 0);
  ASSERT_EQ(fs_->Release(b), 0);
  uint64_t head = store_.head();
  ASSERT_EQ(fs_->Rename(kRoot, "a", kRoot, "b", 0), 0);
  EXPECT_EQ(store_.head(), head + 1);  // one atomic commit, deleting the small old "b" too
  EXPECT_EQ(fs_->Rename(kRoot, "b", kRoot, "b", RENAME_NOREPLACE), 0);
  Remount();
  EXPECT_EQ(Lookup(kRoot, "a"), 0u);
  uint64_t ino = Lookup(kRoot, "b");
  ASSERT_EQ(ino, a);
  ASSERT_EQ(fs_->Open(ino, O_RDONLY), 0);
  EXPECT_EQ(ReadAll(ino), "new");
}

TEST_F(PageFsTest, UnlinkedOpenFileLivesUntilRelease) {
  uint64_t ino = CreateFile(kRoot, "f");
  ASSERT_EQ(fs_->Write(ino, 0, "data", false), 0);
  ASSERT_EQ(fs_->Unlink(kRoot, "f"), 0);
  EXPECT_EQ(Lookup(kRoot, "f"), 0u);
  EXPECT_EQ(ReadAll(ino), "data");  // still readable through the handle
  ASSERT_EQ(fs_->Write(ino, 4, "more", false), 0);
  EXPECT_EQ(ReadAll(ino), "datamore");
  ASSERT_EQ(fs_->Release(ino), 0);
  auto r = store_.Read(0, {fs::InodeKey(ino), fs::PageKey(ino, 0)});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)[0].has_value());
  EXPECT_FALSE((*r)[1].has_value());
}

TEST_F(PageFsTest, DirectoriesListRemoveAndRefuseWhenNotEmpty) {
  fs::InodeAttr attr;
  uint64_t dir;
  ASSERT_EQ(fs_->Mkdir(kRoot, "d", 0700, 0, 0, &attr, &dir), 0);
  CreateFile(dir, "x");
  ASSERT_EQ(fs_->Mkdir(kRoot, "d", 0700, 0, 0, &attr, &dir), EEXIST);
  EXPECT_EQ(fs_->Rmdir(kRoot, "d"), ENOTEMPTY);
  std::vector<DirListing> list;
  ASSERT_EQ(fs_->ReadDir(dir, &list), 0);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[2].name, "x");
  ASSERT_EQ(fs_->Unlink(dir, "x"), 0);
  EXPECT_EQ(fs_->Rmdir(kRoot, "d"), 0);
  ASSERT_EQ(fs_->GetAttr(kRoot, &attr), 0);
  EXPECT_EQ(attr.nlink, 2u);
}

TEST_F(PageFsTest, FailedFlushKeepsReportingAndFencingGivesEio) {
  uint64_t ino = CreateFile(kRoot, "f");
  ASSERT_EQ(fs_->Write(ino, 0, "x", false), 0);
  store_.set_fail_commits(true);
  EXPECT_EQ(fs_->Fsync(ino), EIO);
  store_.set_fail_commits(false);
  EXPECT_EQ(fs_->Fsync(ino), EIO);  // no "fsyncgate": the failure sticks
  // Another writer takes the timeline.
  ASSERT_TRUE(store_.AcquireWriter().ok());
  fs::InodeAttr attr;
  uint64_t other;
  EXPECT_EQ(fs_->Create(kRoot, "g", 0644, O_RDWR | O_CREAT, 0, 0, &attr, &other), EIO);
  EXPECT_EQ(fs_->Write(ino, 0, "y", false), EIO);
  EXPECT_EQ(fs_->FsyncDir(kRoot), EIO);
}

TEST_F(PageFsTest, DsyncWritesAreDurableBeforeTheyReturn) {
  uint64_t ino = CreateFile(kRoot, "wal");
  uint64_t head = store_.head();
  ASSERT_EQ(fs_->Write(ino, 0, std::string(fs::kPageSize, 'w'), /*dsync=*/true), 0);
  EXPECT_EQ(store_.head(), head + 1);
}

TEST_F(PageFsTest, ReadOnlyMountServesAFixedLsn) {
  uint64_t ino = CreateFile(kRoot, "f");
  ASSERT_EQ(fs_->Write(ino, 0, "v1", false), 0);
  ASSERT_EQ(fs_->Fsync(ino), 0);
  uint64_t lsn = store_.head();
  ASSERT_EQ(fs_->Write(ino, 0, "v2", false), 0);
  ASSERT_EQ(fs_->Fsync(ino), 0);
  PageFsOptions ro;
  ro.read_only = true;
  ro.lsn = lsn;
  PageFs old(&store_, ro, &clock_);
  ASSERT_TRUE(old.Mount().ok());
  fs::InodeAttr attr;
  uint64_t found;
  ASSERT_EQ(old.Lookup(kRoot, "f", &attr, &found), 0);
  ASSERT_EQ(old.Open(found, O_RDONLY), 0);
  std::string data;
  ASSERT_EQ(old.Read(found, 0, 100, &data), 0);
  EXPECT_EQ(data, "v1");
  EXPECT_EQ(old.Write(found, 0, "x", false), EROFS);
  EXPECT_EQ(old.Open(found, O_RDWR), EROFS);
}

TEST_F(PageFsTest, SymlinksAndHardLinks) {
  fs::InodeAttr attr;
  uint64_t ino;
  ASSERT_EQ(fs_->Symlink(kRoot, "l", "target/path", 0, 0, &attr, &ino), 0);
  std::string target;
  ASSERT_EQ(fs_->Readlink(ino, &target), 0);
  EXPECT_EQ(target, "target/path");
  uint64_t f = CreateFile(kRoot, "f");
  ASSERT_EQ(fs_->Link(f, kRoot, "f2", &attr), 0);
  EXPECT_EQ(attr.nlink, 2u);
  ASSERT_EQ(fs_->Unlink(kRoot, "f"), 0);
  EXPECT_EQ(Lookup(kRoot, "f2"), f);
}

// The stored attributes of `ino` at the head, decoded.
fs::InodeAttr StoredAttr(FakePageStore& store, uint64_t ino) {
  auto r = store.Read(0, {fs::InodeKey(ino)});
  EXPECT_TRUE(r.ok() && (*r)[0].has_value());
  if (!r.ok() || !(*r)[0].has_value()) return {};
  auto attr = fs::DecodeInodeAttr(*(*r)[0]);
  EXPECT_TRUE(attr.ok());
  return attr.ok() ? *attr : fs::InodeAttr{};
}

TEST_F(PageFsTest, TimesOfAFileGoWithItsNextFlushAndTheKernelsCtimeIsKept) {
  uint64_t ino = CreateFile(kRoot, "f");
  ASSERT_EQ(fs_->Write(ino, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(ino), 0);
  uint64_t head = store_.head();
  // What the writeback cache sends before an fsync: the kernel's mtime and ctime.
  fs::InodeAttr in, out;
  in.mtime_ns = 1'000'000'123;
  in.ctime_ns = 2'000'000'456;
  ASSERT_EQ(fs_->SetAttr(ino, PageFs::kSetMtime | PageFs::kSetCtime, in, &out), 0);
  EXPECT_EQ(out.mtime_ns, in.mtime_ns);
  EXPECT_EQ(out.ctime_ns, in.ctime_ns);
  EXPECT_EQ(store_.head(), head);  // no commit of its own
  ASSERT_EQ(fs_->Fsync(ino), 0);
  EXPECT_EQ(store_.head(), head + 1);
  fs::InodeAttr stored = StoredAttr(store_, ino);
  EXPECT_EQ(stored.mtime_ns, in.mtime_ns);
  EXPECT_EQ(stored.ctime_ns, in.ctime_ns);
  EXPECT_EQ(stored.size, 4u);
  // A mode change is a namespace change: one commit, issued at once.
  in.mode = 0600;
  ASSERT_EQ(fs_->SetAttr(ino, PageFs::kSetMode, in, &out), 0);
  EXPECT_EQ(store_.head(), head + 2);
  EXPECT_EQ(StoredAttr(store_, ino).mode & 07777, 0600u);
}

TEST_F(PageFsTest, TimesWrittenBackAfterTheLastUnlinkDoNotBringTheInodeBack) {
  uint64_t ino = CreateFile(kRoot, "f");
  ASSERT_EQ(fs_->Write(ino, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(ino), 0);
  ASSERT_EQ(fs_->Release(ino), 0);
  ASSERT_EQ(fs_->Unlink(kRoot, "f"), 0);
  fs::InodeAttr in, out;
  in.mtime_ns = in.ctime_ns = 5'000'000'000;
  ASSERT_EQ(fs_->SetAttr(ino, PageFs::kSetMtime | PageFs::kSetCtime, in, &out), 0);
  in.mode = 0600;
  ASSERT_EQ(fs_->SetAttr(ino, PageFs::kSetMode, in, &out), 0);
  ASSERT_TRUE(fs_->FlushAll().ok());
  auto r = store_.Read(0, {fs::InodeKey(ino), fs::PageKey(ino, 0)});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)[0].has_value());
  EXPECT_FALSE((*r)[1].has_value());
}

TEST_F(PageFsTest, AnFsyncIssuesWhatOtherFilesBufferAfterItself) {
  fs_->StartBackgroundFlusher();
  uint64_t a = CreateFile(kRoot, "a"), b = CreateFile(kRoot, "b");
  ASSERT_EQ(fs_->Write(a, 0, "first", false), 0);
  ASSERT_EQ(fs_->Write(b, 0, "second", false), 0);
  ASSERT_EQ(fs_->Fsync(a), 0);
  // b was not fsync'd, but the flusher issues it behind a (polled: the flusher is a thread).
  bool issued = false;
  for (int i = 0; i < 2000 && !issued; ++i) {
    auto r = store_.Read(0, {fs::PageKey(b, 0)});
    ASSERT_TRUE(r.ok());
    issued = (*r)[0].has_value();
    if (!issued) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(issued);
  EXPECT_EQ(StoredAttr(store_, b).size, 6u);
  // And b's fsync has nothing left to commit.
  uint64_t head = store_.head();
  ASSERT_EQ(fs_->Fsync(b), 0);
  EXPECT_EQ(store_.head(), head);
}

TEST_F(PageFsTest, AFileBufferingPastTheIssueAheadSizeStreamsWithoutAnFsync) {
  // A bulk load (pgbench -i's COPY) is issued as it arrives, not in bursts of half the dirty
  // limit: the write that brings a file past issue_ahead_bytes wakes the background flusher,
  // which issues that file. Files buffering less wait for their fsync (or the dirty limit).
  PageFsOptions options;
  options.issue_ahead_bytes = 64 << 10;
  Remount(options);
  fs_->StartBackgroundFlusher();
  uint64_t small = CreateFile(kRoot, "small"), table = CreateFile(kRoot, "table");
  const std::string page(fs::kPageSize, 'x');
  for (uint64_t b = 0; b < 7; ++b) {  // 56 KiB: below the size
    ASSERT_EQ(fs_->Write(small, b * fs::kPageSize, page, false), 0);
  }
  for (uint64_t b = 0; b < 16; ++b) {  // 128 KiB, far below the 48 MiB dirty limit
    ASSERT_EQ(fs_->Write(table, b * fs::kPageSize, page, false), 0);
  }
  // The write that brought it to 64 KiB (8 pages) requested the issue, which takes whatever
  // the file buffers then (at least pages 0-7); what follows stays buffered until it passes the
  // size again or the file is fsync'd.
  bool issued = false;
  for (int i = 0; i < 2000 && !issued; ++i) {
    auto r = store_.Read(0, {fs::PageKey(table, 0), fs::PageKey(table, 7)});
    ASSERT_TRUE(r.ok());
    issued = (*r)[0].has_value() && (*r)[1].has_value();
    if (!issued) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(issued);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto r = store_.Read(0, {fs::PageKey(small, 0)});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)[0].has_value());
  ASSERT_EQ(fs_->Fsync(table), 0);
  EXPECT_EQ(StoredAttr(store_, table).size, 16 * fs::kPageSize);
  r = store_.Read(0, {fs::PageKey(table, 15)});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[0].has_value());
  ASSERT_EQ(fs_->Fsync(small), 0);
}

}  // namespace
}  // namespace pgbranch::pagefs
