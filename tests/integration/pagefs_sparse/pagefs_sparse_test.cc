// Huge sparse files on a real pagefs mount over a real pageserver.
//
// Deleting a file's pages must cost time and memory in proportion to the pages that exist, not to
// the file size: unlink of a 1 TiB and a 999999999999999-byte sparse file and a shrinking truncate
// of one, each with pagefs's peak RSS (VmHWM, reset before each step) under a fixed cap — a
// correctness property (the kernel used to kill pagefs at 22 GB), not a timing one. The times and
// peaks are printed. Also: EFBIG past the largest file size, the ctime of a hard link that
// survives a rename over its twin, and kill -9 in the middle of a large unlink or truncate (a
// test hook pauses the deletion after its first batch), after which a remount shows a consistent
// tree and collects the orphaned pages.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pageserver/fs/fs_layout.h"
#include "tests/support/pagefs_server_fixture.h"

namespace pgbranch::testing {
namespace {

namespace v1 = pageserver::v1;

constexpr uint64_t kPage = fs::kPageSize;
constexpr uint64_t kTiB = 1ull << 40;
constexpr uint64_t kHugeSize = 999999999999999ull;  // pjdfstest's
// pagefs's peak RSS during one delete: generous (its page cache alone may take 256 MiB, and an
// idle pagefs holds ~20 MiB), yet far below what a size-proportional delete needs (22 GB).
constexpr uint64_t kMaxPeakKb = 512 * 1024;
// The test hook pauses the deletion after this many batches of page deletions (8192 keys each).
constexpr const char* kPauseHook = "PGBRANCH_PAGEFS_TEST_PAUSE_DELETE_AFTER_BATCHES";
// A file of 80 MiB of data: 10240 pages, two delete batches.
constexpr uint64_t kBigPages = 10240;
constexpr uint64_t kFirstBatch = 8192;

// The VmHWM (peak resident set) of `pid` in KiB; 0 if unreadable.
uint64_t PeakRssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// Resets the peak resident set of `pid` to its current RSS (proc(5), clear_refs value 5).
void ResetPeakRss(pid_t pid) {
  std::ofstream out(absl::StrCat("/proc/", pid, "/clear_refs"));
  out << "5";
}

class PagefsSparseTest : public PagefsServerTest {
 protected:
  void SetUp() override {
    PagefsServerTest::SetUp();
    if (HasFatalFailure()) return;
    stub_ = server_->NewStub();
  }

  // Mounts the timeline read-write; `pause_after_batches` > 0 sets the test hook.
  std::unique_ptr<PagefsMount> Mount(int pause_after_batches = 0) {
    if (pause_after_batches > 0) setenv(kPauseHook, std::to_string(pause_after_batches).c_str(), 1);
    std::unique_ptr<PagefsMount> mount = PagefsServerTest::Mount();
    unsetenv(kPauseHook);
    return mount;
  }

  // pagefs pipelines its commits: what it issued is durable (and visible to other readers of the
  // pageserver) once an fsync of anything returns. (Not while an unlink in the root directory is
  // paused: the kernel holds the directory's lock, which its fsync takes too.)
  void SyncMount() {
    int fd = open((dir_.path() + "/mnt").c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
  }
  // Keys in [start, end) at the head of the timeline.
  uint64_t CountKeys(const fs::KeyRange& range) {
    uint64_t n = 0;
    std::string start = range.start;
    while (true) {
      grpc::ClientContext ctx;
      v1::ScanRequest req;
      req.set_tenant_id(kTenant);
      req.set_timeline_id(kTimeline);
      req.set_start(start);
      req.set_end(range.end);
      req.set_limit(10000);
      req.set_keys_only(true);
      v1::ScanResponse resp;
      grpc::Status s = stub_->Scan(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) return n;
      n += resp.entries_size();
      for (const auto& e : resp.entries()) EXPECT_TRUE(e.value().empty());
      if (!resp.more() || resp.entries_size() == 0) return n;
      start = resp.entries(resp.entries_size() - 1).key() + std::string(1, '\0');
    }
  }
  uint64_t Pages(uint64_t ino) { return CountKeys(fs::PageRange(ino)); }
  uint64_t Orphans() { return CountKeys(fs::AllOrphansRange()); }
  bool InodeStored(uint64_t ino) {
    grpc::ClientContext ctx;
    v1::ReadRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(kTimeline);
    req.add_keys(fs::InodeKey(ino));
    v1::ReadResponse resp;
    grpc::Status s = stub_->Read(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return s.ok() && resp.values_size() == 1 && resp.values(0).found();
  }
  // Polls `done` (every 20 ms, up to 120 s): waits for background work, asserts nothing on time.
  static bool WaitFor(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  }

  // A durable sparse file of `size` bytes with one page of `fill` at each of `offsets`; its ino.
  uint64_t SparseFile(const std::string& name, uint64_t size, const std::vector<uint64_t>& offsets,
                      char fill = 'x') {
    int fd = open(Path(name).c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    EXPECT_GE(fd, 0) << strerror(errno);
    EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0) << strerror(errno);
    std::string page(kPage, fill);
    for (uint64_t off : offsets) {
      EXPECT_EQ(pwrite(fd, page.data(), page.size(), static_cast<off_t>(off)),
                static_cast<ssize_t>(kPage))
          << strerror(errno);
    }
    EXPECT_EQ(fsync(fd), 0);
    struct stat st;
    EXPECT_EQ(fstat(fd, &st), 0);
    close(fd);
    return st.st_ino;
  }
  // A durable file of `pages` full pages of `fill`; its ino.
  uint64_t DenseFile(const std::string& name, uint64_t pages, char fill) {
    int fd = open(Path(name).c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    EXPECT_GE(fd, 0) << strerror(errno);
    std::string chunk(128 * kPage, fill);
    for (uint64_t p = 0; p < pages; p += 128) {
      size_t n = std::min<uint64_t>(128, pages - p) * kPage;
      EXPECT_EQ(write(fd, chunk.data(), n), static_cast<ssize_t>(n));
    }
    EXPECT_EQ(fsync(fd), 0);
    struct stat st;
    EXPECT_EQ(fstat(fd, &st), 0);
    close(fd);
    return st.st_ino;
  }
  std::string ReadAt(const std::string& name, uint64_t offset, size_t n) {
    int fd = open(Path(name).c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << strerror(errno);
    std::string out(n, '?');
    ssize_t got = pread(fd, out.data(), n, static_cast<off_t>(offset));
    close(fd);
    out.resize(got < 0 ? 0 : static_cast<size_t>(got));
    return out;
  }

  // Runs `step` on the mount, prints its time and pagefs's peak RSS, and checks the peak.
  void Measured(const PagefsMount& mount, const std::string& what,
                const std::function<void()>& step) {
    ResetPeakRss(mount.pid());
    auto start = std::chrono::steady_clock::now();
    step();
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    uint64_t peak_kb = PeakRssKb(mount.pid());
    std::printf("MEASURED %-52s %10.1f ms   pagefs VmHWM %7.1f MiB\n", what.c_str(), ms,
                peak_kb / 1024.0);
    std::fflush(stdout);
    EXPECT_GT(peak_kb, 0u);
    EXPECT_LT(peak_kb, kMaxPeakKb) << what;
  }

  std::unique_ptr<v1::PageService::Stub> stub_;
};

TEST_F(PagefsSparseTest, UnlinkAndShrinkOfHugeSparseFilesCostTheirPagesNotTheirSize) {
  auto mount = Mount();
  ASSERT_NE(mount, nullptr);

  uint64_t tib = SparseFile("tib", kTiB, {0, 1ull << 30, 100ull << 30, kTiB - kPage});
  ASSERT_EQ(Pages(tib), 4u);
  Measured(*mount, "unlink of a 1 TiB sparse file (4 pages)",
           [&] { ASSERT_EQ(unlink(Path("tib").c_str()), 0) << strerror(errno); });
  SyncMount();
  EXPECT_EQ(Pages(tib), 0u);
  EXPECT_FALSE(InodeStored(tib));

  // Page-aligned offsets: one stored page each.
  const uint64_t last_page = (kHugeSize / kPage - 1) * kPage;
  uint64_t huge =
      SparseFile("huge", kHugeSize, {0, 12345 * kPage, kHugeSize / 2 / kPage * kPage, last_page});
  ASSERT_EQ(Pages(huge), 4u);
  Measured(*mount, "unlink of a 999999999999999-byte sparse file (4 pages)",
           [&] { ASSERT_EQ(unlink(Path("huge").c_str()), 0) << strerror(errno); });
  SyncMount();
  EXPECT_EQ(Pages(huge), 0u);
  EXPECT_FALSE(InodeStored(huge));

  uint64_t shrink =
      SparseFile("shrink", kHugeSize, {0, kPage, 2 * kPage, 5ull << 30, kTiB, last_page});
  ASSERT_EQ(Pages(shrink), 6u);
  const uint64_t new_size = 2 * kPage + 100;
  Measured(*mount, "truncate of a 999999999999999-byte sparse file to 16 KiB", [&] {
    ASSERT_EQ(truncate(Path("shrink").c_str(), static_cast<off_t>(new_size)), 0) << strerror(errno);
  });
  SyncMount();
  EXPECT_EQ(Pages(shrink), 3u);  // blocks 0, 1 and the cut block 2
  struct stat st;
  ASSERT_EQ(stat(Path("shrink").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), new_size);
  EXPECT_TRUE(ReadAt("shrink", 0, 1 << 20) == std::string(new_size, 'x'));
  // Growing again must show zeros, never the deleted pages.
  ASSERT_EQ(truncate(Path("shrink").c_str(), static_cast<off_t>(kTiB + kPage)), 0);
  EXPECT_TRUE(ReadAt("shrink", kTiB, 16) == std::string(16, '\0'));

  EXPECT_EQ(Orphans(), 0u);
  EXPECT_EQ(mount->Unmount(), 0);
}

TEST_F(PagefsSparseTest, SizesPastTheLargestFileSizeGetEfbig) {
  auto mount = Mount();
  ASSERT_NE(mount, nullptr);
  const off_t max = std::numeric_limits<off_t>::max();  // fs::kMaxFileSize
  ASSERT_EQ(static_cast<uint64_t>(max), fs::kMaxFileSize);
  int fd = open(Path("f").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0);
  // The kernel gives a FUSE mount off_t's limit too (s_maxbytes = MAX_LFS_FILESIZE), so it
  // refuses these before pagefs sees them: fallocate past the limit with EFBIG, a write whose end
  // does not fit off_t with EINVAL (rw_verify_area), as on every Linux filesystem.
  errno = 0;
  EXPECT_EQ(fallocate(fd, 0, max - 1, 2), -1);
  EXPECT_EQ(errno, EFBIG);
  errno = 0;
  EXPECT_EQ(fallocate(fd, 0, max, 1), -1);
  EXPECT_EQ(errno, EFBIG);
  errno = 0;
  EXPECT_EQ(pwrite(fd, "x", 1, max), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(ftruncate(fd, -1), -1);  // not expressible: EINVAL, as on any filesystem
  EXPECT_EQ(errno, EINVAL);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0);
  // Up to the largest size itself: works, reads back, and deletes.
  EXPECT_EQ(pwrite(fd, "end", 3, max - 3), 3) << strerror(errno);
  EXPECT_EQ(fsync(fd), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, max);
  char buf[3] = {};
  EXPECT_EQ(pread(fd, buf, sizeof(buf), max - 3), 3) << strerror(errno);
  EXPECT_EQ(std::string(buf, 3), "end");
  close(fd);
  ASSERT_EQ(truncate(Path("f").c_str(), max), 0);
  Measured(*mount, "unlink of a file of the largest size (2^63-1 bytes)",
           [&] { ASSERT_EQ(unlink(Path("f").c_str()), 0) << strerror(errno); });
  EXPECT_EQ(mount->Unmount(), 0);  // pagefs survived all of it
}

TEST_F(PagefsSparseTest, RenameOverATargetWithASecondLinkUpdatesTheSurvivorsCtime) {
  auto mount = Mount();
  ASSERT_NE(mount, nullptr);
  SparseFile("target", 10, {});
  ASSERT_EQ(link(Path("target").c_str(), Path("other").c_str()), 0);
  SparseFile("src", 10, {});
  struct stat before, after;
  ASSERT_EQ(stat(Path("other").c_str(), &before), 0);
  ASSERT_EQ(before.st_nlink, 2u);
  // ctime has nanosecond resolution; a millisecond makes the change visible.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(rename(Path("src").c_str(), Path("target").c_str()), 0);
  ASSERT_EQ(stat(Path("other").c_str(), &after), 0);
  EXPECT_EQ(after.st_nlink, 1u);
  EXPECT_GT(after.st_ctim.tv_sec * 1'000'000'000ll + after.st_ctim.tv_nsec,
            before.st_ctim.tv_sec * 1'000'000'000ll + before.st_ctim.tv_nsec);
  // Durably so: a fresh pagefs process reads the same.
  ASSERT_EQ(mount->Unmount(), 0);
  mount = Mount();
  ASSERT_NE(mount, nullptr);
  struct stat again;
  ASSERT_EQ(stat(Path("other").c_str(), &again), 0);
  EXPECT_EQ(again.st_nlink, 1u);
  EXPECT_EQ(again.st_ctim.tv_sec, after.st_ctim.tv_sec);
  EXPECT_EQ(again.st_ctim.tv_nsec, after.st_ctim.tv_nsec);
}

TEST_F(PagefsSparseTest, KillDuringALargeUnlinkLeavesTheFileGoneAndTheOrphanIsCollected) {
  auto mount = Mount(/*pause_after_batches=*/1);
  ASSERT_NE(mount, nullptr);
  uint64_t big = DenseFile("big", kBigPages, 'b');
  uint64_t keep = DenseFile("keep", 4, 'k');
  ASSERT_EQ(Pages(big), kBigPages);

  // unlink blocks in pagefs once the first batch is deleted; then pagefs is killed.
  std::thread rm([&] { unlink(Path("big").c_str()); });
  bool paused = WaitFor([&] { return Pages(big) == kBigPages - kFirstBatch && Orphans() == 1; });
  mount->Kill();
  rm.join();
  ASSERT_TRUE(paused) << "pages left: " << Pages(big) << ", orphans: " << Orphans();

  // The pageserver holds the crash state: the name gone, the inode an orphan, pages left.
  EXPECT_EQ(Pages(big), kBigPages - kFirstBatch);
  EXPECT_TRUE(InodeStored(big));

  mount = Mount();
  ASSERT_NE(mount, nullptr);
  struct stat st;
  EXPECT_EQ(stat(Path("big").c_str(), &st), -1);  // gone, not half there
  EXPECT_EQ(errno, ENOENT);
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/mnt")) {
    names.push_back(e.path().filename());
  }
  EXPECT_EQ(names, std::vector<std::string>{"keep"});
  EXPECT_TRUE(ReadAt("keep", 0, 1 << 20) == std::string(4 * kPage, 'k'));
  // The mount collects the orphan in the background.
  EXPECT_TRUE(WaitFor([&] { return Orphans() == 0; }));
  EXPECT_EQ(Pages(big), 0u);
  EXPECT_FALSE(InodeStored(big));
  EXPECT_EQ(Pages(keep), 4u);
  EXPECT_EQ(mount->Unmount(), 0);
}

TEST_F(PagefsSparseTest, KillDuringALargeTruncateKeepsTheOldSizeAndTheTruncateCanBeRepeated) {
  auto mount = Mount(/*pause_after_batches=*/1);
  ASSERT_NE(mount, nullptr);
  uint64_t ino = DenseFile("f", kBigPages, 'f');
  std::thread trunc([&] { truncate(Path("f").c_str(), 100); });
  // The pages past the new end go first: block 0 stays, the first batch takes blocks 1..8192.
  bool paused = WaitFor([&] { return Pages(ino) == kBigPages - kFirstBatch; });
  mount->Kill();
  trunc.join();
  ASSERT_TRUE(paused) << "pages left: " << Pages(ino);

  mount = Mount();
  ASSERT_NE(mount, nullptr);
  struct stat st;
  ASSERT_EQ(stat(Path("f").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kBigPages * kPage);  // the size shrinks last
  EXPECT_TRUE(ReadAt("f", 0, 100) == std::string(100, 'f'));        // below the new size: intact
  EXPECT_TRUE(ReadAt("f", kPage, 16) == std::string(16, '\0'));     // part of the doomed tail
  EXPECT_TRUE(ReadAt("f", (kBigPages - 1) * kPage, 16) == std::string(16, 'f'));
  // Repeated (as PostgreSQL's recovery repeats a WAL-logged truncation), it completes.
  ASSERT_EQ(truncate(Path("f").c_str(), 100), 0);
  ASSERT_EQ(stat(Path("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 100);
  EXPECT_TRUE(ReadAt("f", 0, 1 << 20) == std::string(100, 'f'));
  SyncMount();
  EXPECT_EQ(Pages(ino), 1u);
  EXPECT_EQ(mount->Unmount(), 0);
}

}  // namespace
}  // namespace pgbranch::testing
