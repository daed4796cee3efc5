// Reads that miss every cache, from many threads at once, on a real pagefs mount over a real
// pageserver: pagefs combines concurrent misses into shared Read RPCs (ReadBatcher), and the
// kernel turns posix_fadvise(WILLNEED) into background reads that arrive together. None of that
// may return a stale page: a writer overwrites pages (and fdatasyncs now and then, so reads race
// flushes and fresh commits too) while readers check that every page they read is whole, is the
// page they asked for, and is at least as new as the last write that returned before their read
// began. pagefs runs with --cache-mb 0 and the checked reads use O_DIRECT, so every read reaches
// pagefs and, unless the page is dirty or being flushed, the pageserver.
//
// A read that overlaps a write still in progress may see part of it: the writes are buffered
// (the writeback cache copies one 4 KiB kernel page at a time, under the inode's lock, which an
// O_DIRECT read does not take), and the read first writes back the dirty pages of its range --
// possibly the first half of an 8 KiB write whose second half is not copied yet. So every 4 KiB
// half of a page carries its own page number, half and version, and each half is checked on its
// own: whole, in its place, and no older than the last write that returned before the read.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pageserver/pagefs/kernel_readahead.h"
#include "tests/support/pagefs_server_fixture.h"

namespace pgbranch::testing {
namespace {

constexpr size_t kPage = 8192;
constexpr size_t kHalf = kPage / 2;  // the kernel's page: what a concurrent buffered write tears at
constexpr uint64_t kPages = 256;
constexpr int kReaders = 6;
constexpr uint64_t kWrites = 1500;

// Half `h` of page `p` at version `v`: the page number, the half and the version, then a fill byte
// derived from all three, so a torn, misplaced or stale half shows.
std::string HalfImage(uint64_t p, uint64_t h, uint64_t v) {
  std::string half(kHalf, static_cast<char>('a' + (p * 7 + v * 3 + h) % 26));
  memcpy(half.data(), &p, sizeof(p));
  memcpy(half.data() + sizeof(p), &h, sizeof(h));
  memcpy(half.data() + 2 * sizeof(p), &v, sizeof(v));
  return half;
}

// Page `p` at version `v`: both halves at that version.
std::string PageImage(uint64_t p, uint64_t v) { return HalfImage(p, 0, v) + HalfImage(p, 1, v); }

// Checks each half of `page` is a whole half of page `p`; their versions in v[0] and v[1].
bool ParseImage(const std::string& page, uint64_t p, uint64_t v[2]) {
  if (page.size() != kPage) return false;
  for (uint64_t h = 0; h < 2; ++h) {
    memcpy(&v[h], page.data() + h * kHalf + 2 * sizeof(p), sizeof(v[h]));
    if (page.compare(h * kHalf, kHalf, HalfImage(p, h, v[h])) != 0) return false;
  }
  return true;
}

// Checks the page read: whole, page `p`, each half at least version `min`; reports a failure.
bool CheckRead(const std::string& page, ssize_t n, uint64_t p, uint64_t min) {
  uint64_t v[2] = {0, 0};
  if (n == static_cast<ssize_t>(kPage) && ParseImage(page, p, v) && v[0] >= min && v[1] >= min) {
    return true;
  }
  ADD_FAILURE() << "page " << p << ": read " << n << " bytes, halves at versions " << v[0]
                << " and " << v[1] << ", the last write before the read was version " << min;
  return false;
}

// pagefs with no page cache of its own: every read it is asked reaches a dirty page or the
// pageserver.
class PagefsReadsTest : public PagefsServerTest {
 protected:
  std::unique_ptr<PagefsMount> Mount() { return PagefsServerTest::Mount({"--cache-mb", "0"}); }
  std::string File() const { return Path("f"); }
  // The body of the tests below. `bulk_traffic`: meanwhile another thread streams large writes
  // and fdatasyncs into another file, so that the commit pipeline is seldom empty and reads of
  // `f` race commits of another file that are in flight (a head read waits only for the
  // commits that touch its pages, not for those).
  void RaceReadsAgainstWrites(bool bulk_traffic);
};

TEST_F(PagefsReadsTest, ConcurrentMissesNeverAnswerAStalePage) { RaceReadsAgainstWrites(false); }

TEST_F(PagefsReadsTest, ReadsBehindOtherFilesCommitsNeverAnswerAStalePage) {
  RaceReadsAgainstWrites(true);
}

void PagefsReadsTest::RaceReadsAgainstWrites(bool bulk_traffic) {
  {
    auto mount = Mount();
    ASSERT_NE(mount, nullptr);
    int fd = open(File().c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0) << strerror(errno);
    for (uint64_t p = 0; p < kPages; ++p) {
      std::string page = PageImage(p, 0);
      ASSERT_EQ(pwrite(fd, page.data(), kPage, p * kPage), static_cast<ssize_t>(kPage));
    }
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
    ASSERT_EQ(mount->Unmount(), 0);
  }
  auto mount = Mount();  // a fresh process: nothing cached
  ASSERT_NE(mount, nullptr);

  // published[p]: the version of the last write of page p that returned.
  std::vector<std::atomic<uint64_t>> published(kPages);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0}, failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      int fd = open(File().c_str(), O_RDONLY | O_DIRECT);
      if (fd < 0) {
        ADD_FAILURE() << "open O_DIRECT: " << strerror(errno);
        ++failures;
        return;
      }
      std::mt19937_64 rng(r);
      std::unique_ptr<char, decltype(&free)> buf(static_cast<char*>(aligned_alloc(4096, kPage)),
                                                 &free);
      std::string page(kPage, '\0');
      while (!done) {
        uint64_t p = rng() % kPages;
        uint64_t min = published[p].load();
        // A few other pages in the background (the kernel's read-ahead requests, which pagefs
        // gets on other threads at once), dropped first so that they are read anew.
        for (int i = 0; i < 3; ++i) {
          uint64_t q = rng() % kPages;
          (void)posix_fadvise(fd, q * kPage, kPage, POSIX_FADV_DONTNEED);
          (void)posix_fadvise(fd, q * kPage, kPage, POSIX_FADV_WILLNEED);
        }
        ssize_t n = pread(fd, buf.get(), kPage, p * kPage);
        if (n > 0) memcpy(page.data(), buf.get(), n);
        if (!CheckRead(page, n, p, min)) ++failures;
        ++reads;
      }
      close(fd);
    });
  }
  std::thread bulk;
  if (bulk_traffic) {
    bulk = std::thread([&] {
      int bfd = open(Path("bulk").c_str(), O_RDWR | O_CREAT, 0644);
      if (bfd < 0) {
        ADD_FAILURE() << "open bulk: " << strerror(errno);
        return;
      }
      std::string chunk(1 << 20, 'b');
      for (uint64_t i = 0; !done; ++i) {
        chunk[0] = static_cast<char>(i);
        if (pwrite(bfd, chunk.data(), chunk.size(), (i % 16) * chunk.size()) < 0 ||
            (i % 4 == 3 && fdatasync(bfd) != 0)) {
          ADD_FAILURE() << "bulk write: " << strerror(errno);
          break;
        }
      }
      close(bfd);
    });
  }
  int fd = open(File().c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::mt19937_64 rng(99);
  for (uint64_t w = 1; w <= kWrites && failures == 0; ++w) {
    uint64_t p = rng() % kPages;
    std::string page = PageImage(p, w);
    ASSERT_EQ(pwrite(fd, page.data(), kPage, p * kPage), static_cast<ssize_t>(kPage));
    published[p] = w;
    if (w % 50 == 0) {
      ASSERT_EQ(fdatasync(fd), 0);
    }
  }
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  done = true;
  for (auto& t : readers) t.join();
  if (bulk.joinable()) bulk.join();
  EXPECT_EQ(failures.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  std::printf("MEASURED %llu checked reads while %llu writes\n",
              static_cast<unsigned long long>(reads.load()),
              static_cast<unsigned long long>(kWrites));

  // A fresh mount holds exactly the last version of every page.
  ASSERT_EQ(mount->Unmount(), 0);
  mount = Mount();
  ASSERT_NE(mount, nullptr);
  fd = open(File().c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string page(kPage, '\0');
  for (uint64_t p = 0; p < kPages; ++p) {
    ASSERT_EQ(pread(fd, page.data(), kPage, p * kPage), static_cast<ssize_t>(kPage));
    uint64_t v[2] = {0, 0};
    EXPECT_TRUE(ParseImage(page, p, v)) << "page " << p;
    EXPECT_EQ(v[0], published[p].load()) << "page " << p;
    EXPECT_EQ(v[1], published[p].load()) << "page " << p;
  }
  close(fd);
}

// A WAL segment (pg_wal/...: pagefs reads it far ahead once it is read sequentially, and a read
// of pages being fetched waits for that fetch) rewritten from its start while a reader streams
// through it again and again, as PostgreSQL recycles a segment: no read may answer a page older
// than the last write that returned before it began. pagefs keeps its page cache here (the read-
// ahead goes there); the reader uses O_DIRECT, so every read reaches pagefs.
TEST_F(PagefsReadsTest, ARewrittenWalSegmentIsNeverReadStale) {
  constexpr uint64_t kWalPages = 512;  // 4 MiB
  const std::string wal = Path("pg_wal/000000010000000000000001");
  {
    auto mount = PagefsServerTest::Mount();
    ASSERT_NE(mount, nullptr);
    ASSERT_EQ(mkdir(Path("pg_wal").c_str(), 0700), 0) << strerror(errno);
    int fd = open(wal.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0) << strerror(errno);
    for (uint64_t p = 0; p < kWalPages; ++p) {
      std::string page = PageImage(p, 0);
      ASSERT_EQ(pwrite(fd, page.data(), kPage, p * kPage), static_cast<ssize_t>(kPage));
    }
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
    ASSERT_EQ(mount->Unmount(), 0);
  }
  auto mount = PagefsServerTest::Mount();  // a fresh process, with its page cache
  ASSERT_NE(mount, nullptr);
  std::vector<std::atomic<uint64_t>> published(kWalPages);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> failures{0}, scans{0};
  std::thread reader([&] {
    int fd = open(wal.c_str(), O_RDONLY | O_DIRECT);
    if (fd < 0) {
      ADD_FAILURE() << "open O_DIRECT: " << strerror(errno);
      ++failures;
      return;
    }
    constexpr size_t kChunk = 8 * kPage;
    std::unique_ptr<char, decltype(&free)> buf(static_cast<char*>(aligned_alloc(4096, kChunk)),
                                               &free);
    while (!done || scans == 0) {
      for (uint64_t p = 0; p < kWalPages && failures == 0; p += 8) {
        std::vector<uint64_t> min(8);
        for (uint64_t i = 0; i < 8; ++i) min[i] = published[p + i].load();
        ssize_t n = pread(fd, buf.get(), kChunk, p * kPage);
        for (uint64_t i = 0; i < 8; ++i) {
          std::string page(buf.get() + i * kPage, kPage);
          if (!CheckRead(page, n == static_cast<ssize_t>(kChunk) ? kPage : n, p + i, min[i])) {
            ++failures;
            break;
          }
        }
      }
      ++scans;
    }
    close(fd);
  });
  int fd = open(wal.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << strerror(errno);
  for (uint64_t w = 1; w <= 4 && failures == 0; ++w) {
    for (uint64_t p = 0; p < kWalPages; ++p) {
      std::string page = PageImage(p, w);
      ASSERT_EQ(pwrite(fd, page.data(), kPage, p * kPage), static_cast<ssize_t>(kPage));
      published[p] = w;
      if (p % 64 == 63) {
        ASSERT_EQ(fdatasync(fd), 0);
      }
    }
  }
  close(fd);
  done = true;
  reader.join();
  EXPECT_EQ(failures, 0u);
  EXPECT_GT(scans, 0u);
  EXPECT_EQ(mount->Unmount(), 0);
}

// The kernel's read-ahead window of the mount (--read-ahead-kb): raised once the kernel has
// processed INIT (the INIT reply alone can only lower the kernel's 128 KiB default), so that
// sequential reads (recovery's WAL) arrive as large READs sent ahead of the reader.
TEST_F(PagefsReadsTest, MountRaisesTheKernelsReadAheadWindow) {
  auto read_window = [this]() {
    struct stat st;
    if (stat(Path("").c_str(), &st) != 0) return std::string("no mount");
    std::ifstream in(pagefs::KernelReadAhead::SysfsPath(st.st_dev));
    std::string value;
    in >> value;
    return value;
  };
  auto wait_for = [&](const std::string& want) {
    std::string got;
    for (int i = 0; i < 500 && (got = read_window()) != want; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return got;
  };
  {
    auto mount = PagefsServerTest::Mount({"--read-ahead-kb", "4096"});
    ASSERT_NE(mount, nullptr);
    EXPECT_EQ(wait_for("4096"), "4096");
    EXPECT_EQ(mount->Unmount(), 0);
  }
  {
    auto mount = PagefsServerTest::Mount();  // the default
    ASSERT_NE(mount, nullptr);
    EXPECT_EQ(wait_for("2048"), "2048");
    EXPECT_EQ(mount->Unmount(), 0);
  }
  {
    auto mount = PagefsServerTest::Mount({"--read-ahead-kb", "0"});  // the kernel's own
    ASSERT_NE(mount, nullptr);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(read_window(), "128");
    EXPECT_EQ(mount->Unmount(), 0);
  }
}

}  // namespace
}  // namespace pgbranch::testing
