// Reads that miss every cache, from many threads at once, on a real pagefs mount over a real
// pageserver: pagefs combines concurrent misses into shared Read RPCs (ReadBatcher), and the
// kernel turns posix_fadvise(WILLNEED) into background reads that arrive together. None of that
// may return a stale page: a writer overwrites pages (and fdatasyncs now and then, so reads race
// flushes and fresh commits too) while readers check that every page they read is whole, is the
// page they asked for, and is at least as new as the last write that returned before their read
// began. pagefs runs with --cache-mb 0 and the checked reads use O_DIRECT (past the kernel's page
// cache, whose copies a concurrent buffered write may tear), so every read reaches pagefs and,
// unless the page is dirty or being flushed, the pageserver.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/pagefs_server_fixture.h"

namespace pgbranch::testing {
namespace {

constexpr size_t kPage = 8192;
constexpr uint64_t kPages = 256;
constexpr int kReaders = 6;
constexpr uint64_t kWrites = 1500;

// Page `p` at version `v`: the two numbers, then a fill byte derived from both, so a torn or
// misplaced page shows.
std::string PageImage(uint64_t p, uint64_t v) {
  std::string page(kPage, static_cast<char>('a' + (p * 7 + v) % 26));
  memcpy(page.data(), &p, sizeof(p));
  memcpy(page.data() + sizeof(p), &v, sizeof(v));
  return page;
}

// Checks `page` is a whole image of page `p`; its version in *v.
bool ParseImage(const std::string& page, uint64_t p, uint64_t* v) {
  uint64_t got_p = 0;
  memcpy(&got_p, page.data(), sizeof(got_p));
  memcpy(v, page.data() + sizeof(got_p), sizeof(*v));
  return got_p == p && page == PageImage(p, *v);
}

// pagefs with no page cache of its own: every read it is asked reaches a dirty page or the
// pageserver.
class PagefsReadsTest : public PagefsServerTest {
 protected:
  std::unique_ptr<PagefsMount> Mount() { return PagefsServerTest::Mount({"--cache-mb", "0"}); }
  std::string File() const { return Path("f"); }
};

TEST_F(PagefsReadsTest, ConcurrentMissesNeverAnswerAStalePage) {
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
        uint64_t v = 0;
        if (n != static_cast<ssize_t>(kPage) || !ParseImage(page, p, &v) || v < min) {
          ADD_FAILURE() << "page " << p << ": read " << n << " bytes, version " << v
                        << ", the last write before the read was version " << min;
          ++failures;
        }
        ++reads;
      }
      close(fd);
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
    uint64_t v = 0;
    EXPECT_TRUE(ParseImage(page, p, &v)) << "page " << p;
    EXPECT_EQ(v, published[p].load()) << "page " << p;
  }
  close(fd);
}

}  // namespace
}  // namespace pgbranch::testing
