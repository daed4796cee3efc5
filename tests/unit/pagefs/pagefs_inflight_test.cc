// Pages in flight: a read that needs pages another read or the background read-ahead is fetching
// waits for that fetch instead of fetching them again, and still never answers a stale page (a
// write during the fetch wins; a failed fetch leaves the waiter to fetch for itself). And the
// far read-ahead of files read as a stream (WAL segments under replay).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "gtest/gtest.h"
#include "tests/unit/pagefs/one_file_fixture.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kPage = fs::kPageSize;

// Waits (at most 10 s) until `done` holds.
template <typename F>
bool WaitUntil(F done) {
  for (int i = 0; i < 10000 && !done(); ++i) usleep(1000);
  return done();
}

class PageFsInFlightTest : public OneFileTest {
 protected:
  // A file of 64 pages read with 16-page windows; blocks 0 and 1 read (1 misses sequentially and
  // fetches 2..17 with it), then 2..9: block 9 queues the background window 18..33, whose Read
  // RPC stops inside the store (after reading its values) until Release().
  void StartHeldBackgroundWindow() {
    PageFsOptions options;
    options.readahead_pages = 16;
    SetUpFile(64, options);
    ExpectPages(0, 1);
    ExpectPages(1, 1);
    reads_ = store_.reads();
    store_.set_after_read([this] {
      entered_.set_value();
      release_.get_future().wait();
    });
    for (uint64_t b = 2; b < 10; ++b) ExpectPages(b, 1);
    entered_.get_future().wait();  // the background fetch of 18..33 is in flight
    ASSERT_EQ(store_.reads(), reads_ + 1);
  }
  void Release() {
    if (!released_) release_.set_value();
    released_ = true;
  }
  void TearDown() override { Release(); }

  // Reads `n` pages from `b` on another thread; `done` is set once it returned.
  std::thread ReadInBackground(uint64_t b, uint64_t n, std::string* out, std::atomic<bool>* done) {
    return std::thread([this, b, n, out, done] {
      EXPECT_EQ(fs_->Read(ino_, b * kPage, n * kPage, out), 0);
      *done = true;
    });
  }

  uint64_t reads_ = 0;
  std::promise<void> entered_, release_;
  bool released_ = false;
};

std::string Pages(uint64_t b, uint64_t n) {
  std::string s;
  for (uint64_t i = 0; i < n; ++i) s += PageOf(Fill(b + i));
  return s;
}

// The kernel's READ of pages the read-ahead is fetching waits for that fetch: one Read RPC, not
// two. (The old code sent a second RPC for the same pages.)
TEST_F(PageFsInFlightTest, AReadOfPagesBeingFetchedWaitsForThatFetch) {
  StartHeldBackgroundWindow();
  std::string out;
  std::atomic<bool> done{false};
  std::thread reader = ReadInBackground(18, 4, &out, &done);
  usleep(100 * 1000);
  EXPECT_FALSE(done) << "the read did not wait for the fetch in flight";
  EXPECT_EQ(store_.reads(), reads_ + 1);
  Release();
  reader.join();
  EXPECT_EQ(out, Pages(18, 4));
  EXPECT_EQ(store_.reads(), reads_ + 1);  // the read was served by the background fetch
  EXPECT_GE(fs_->Stats().in_flight_waits, 1u);
}

// A read of in-flight pages and others: it waits, then fetches only the others.
TEST_F(PageFsInFlightTest, AReadPartlyInFlightFetchesOnlyTheRest) {
  StartHeldBackgroundWindow();
  std::string out;
  std::atomic<bool> done{false};
  std::thread reader = ReadInBackground(30, 8, &out, &done);  // 30..33 in flight, 34..37 not
  usleep(50 * 1000);
  Release();
  reader.join();
  EXPECT_EQ(out, Pages(30, 8));
  EXPECT_LE(store_.reads(), reads_ + 2);
}

// A write that lands while the fetch a reader waits for is in flight wins: the fetch is dropped
// (the inode's version moved), the written page is served at once, and the waiter of a page the
// write did not touch fetches it itself, never caching a stale page.
TEST_F(PageFsInFlightTest, AWriteDuringTheFetchAReaderWaitsForWins) {
  StartHeldBackgroundWindow();
  std::string out;
  std::atomic<bool> done{false};
  std::thread reader = ReadInBackground(21, 2, &out, &done);
  usleep(20 * 1000);
  ASSERT_EQ(fs_->Write(ino_, 20 * kPage, PageOf('Z'), false), 0);
  ASSERT_EQ(fs_->Write(ino_, 22 * kPage, PageOf('Y'), false), 0);
  ExpectPages(20, 1, 'Z');  // dirty: served without waiting for the fetch
  Release();
  reader.join();
  // The reader's pages are either as before the write (21) or the write's (22), never a page
  // fetched before the write and cached after it.
  EXPECT_EQ(out.substr(0, kPage), PageOf(Fill(21)));
  EXPECT_EQ(out.substr(kPage), PageOf('Y'));
  ASSERT_EQ(fs_->Fsync(ino_), 0);
  ExpectPages(20, 1, 'Z');
  ExpectPages(22, 1, 'Y');
  ExpectPages(23, 1);
}

// A fetch that fails ends the wait: the waiting read fetches the pages itself (and would report
// its own error).
TEST_F(PageFsInFlightTest, AFailedFetchLeavesTheWaiterToFetchForItself) {
  PageFsOptions options;
  options.readahead_pages = 16;
  SetUpFile(64, options);
  ExpectPages(0, 1);
  ExpectPages(1, 1);
  uint64_t reads = store_.reads();
  std::promise<void> entered, release;
  store_.FailReads(1);
  store_.set_after_read([&] {
    entered.set_value();
    release.get_future().wait();
  });
  for (uint64_t b = 2; b < 10; ++b) ExpectPages(b, 1);
  entered.get_future().wait();
  std::string out;
  std::atomic<bool> done{false};
  std::thread reader = ReadInBackground(18, 2, &out, &done);
  usleep(50 * 1000);
  EXPECT_FALSE(done);
  release.set_value();
  reader.join();
  EXPECT_EQ(out, Pages(18, 2));
  EXPECT_EQ(store_.reads(), reads + 2);  // the failed background fetch, then the reader's own
}

// Two concurrent foreground reads of the same missing pages: one fetches, the other waits for it.
TEST_F(PageFsInFlightTest, ConcurrentReadsOfTheSameMissShareOneFetch) {
  PageFsOptions options;
  options.readahead_pages = 0;
  SetUpFile(16, options);
  uint64_t reads = store_.reads();
  std::promise<void> entered, release;
  store_.set_after_read([&] {
    entered.set_value();
    release.get_future().wait();
  });
  std::string first, second;
  std::thread a([&] { EXPECT_EQ(fs_->Read(ino_, 4 * kPage, 4 * kPage, &first), 0); });
  entered.get_future().wait();
  std::atomic<bool> done{false};
  std::thread b = ReadInBackground(4, 4, &second, &done);
  usleep(50 * 1000);
  EXPECT_FALSE(done);
  release.set_value();
  a.join();
  b.join();
  EXPECT_EQ(first, Pages(4, 4));
  EXPECT_EQ(second, Pages(4, 4));
  EXPECT_EQ(store_.reads(), reads + 1);
}

// A file read as a stream (a WAL segment) keeps the background read-ahead far ahead of the
// reader: windows up to stream_readahead_pages past it are fetched before it gets there.
TEST_F(OneFileTest, AStreamIsReadFarAhead) {
  PageFsOptions options;
  options.readahead_pages = 16;
  options.stream_readahead_pages = 64;
  SetUpFile(128, options);
  std::string out;
  ASSERT_EQ(fs_->Read(ino_, 0, kPage, &out, /*stream=*/true), 0);
  ASSERT_EQ(fs_->Read(ino_, kPage, kPage, &out, /*stream=*/true), 0);
  // Block 1 fetched 2..17 with it, and queued 18..65 (three windows) in the background.
  ASSERT_TRUE(WaitUntil([&] { return fs_->Stats().readahead_pages >= 64; }));
  uint64_t reads = store_.reads();
  for (uint64_t b = 2; b < 66; ++b) {
    ASSERT_EQ(fs_->Read(ino_, b * kPage, kPage, &out, /*stream=*/true), 0);
    ASSERT_EQ(out, PageOf(Fill(b))) << "block " << b;
    if (b == 2) {
      EXPECT_EQ(store_.reads(), reads) << "the reader read its own page";
    }
  }
  ASSERT_TRUE(WaitUntil([&] { return fs_->Stats().readahead_pages >= 126; }));
  EXPECT_EQ(fs_->Stats().cache_misses, 2u);  // blocks 0 and 1
}

// The same reads of a file that is not a stream read ahead one window at a time, as before.
TEST_F(OneFileTest, NotAStreamReadsOneWindowAhead) {
  PageFsOptions options;
  options.readahead_pages = 16;
  options.stream_readahead_pages = 64;
  SetUpFile(128, options);
  ExpectPages(0, 1);
  ExpectPages(1, 1);
  usleep(50 * 1000);
  EXPECT_EQ(fs_->Stats().readahead_pages, 16u);
}

// A stream rewritten while its far read-ahead is queued or in flight (PostgreSQL recycles a WAL
// segment: renamed, then overwritten) is read as written: the windows fetched before the writes
// are dropped, the ones chosen after them skip the dirty pages or read the flushed ones.
TEST_F(OneFileTest, AStreamRewrittenDuringItsReadAheadIsReadAsWritten) {
  PageFsOptions options;
  options.readahead_pages = 8;
  options.stream_readahead_pages = 56;
  SetUpFile(64, options);
  std::string out;
  ASSERT_EQ(fs_->Read(ino_, 0, kPage, &out, /*stream=*/true), 0);
  ASSERT_EQ(fs_->Read(ino_, kPage, kPage, &out, /*stream=*/true), 0);
  for (uint64_t b = 0; b < 64; ++b) {
    ASSERT_EQ(fs_->Write(ino_, b * kPage, PageOf('W'), false), 0);
    if (b % 16 == 15) {
      ASSERT_EQ(fs_->Fsync(ino_), 0);
    }
  }
  for (uint64_t b = 0; b < 64; ++b) {
    ASSERT_EQ(fs_->Read(ino_, b * kPage, kPage, &out, /*stream=*/true), 0);
    ASSERT_EQ(out, PageOf('W')) << "block " << b;
  }
  usleep(50 * 1000);  // whatever the background still fetches
  for (uint64_t b = 0; b < 64; ++b) ExpectPages(b, 1, 'W');
}

// A stream truncated (and grown again) during its far read-ahead reads zeros past the truncation.
TEST_F(OneFileTest, AStreamTruncatedDuringItsReadAheadReadsZeros) {
  PageFsOptions options;
  options.readahead_pages = 8;
  options.stream_readahead_pages = 56;
  SetUpFile(64, options);
  std::string out;
  ASSERT_EQ(fs_->Read(ino_, 0, kPage, &out, /*stream=*/true), 0);
  ASSERT_EQ(fs_->Read(ino_, kPage, kPage, &out, /*stream=*/true), 0);
  fs::InodeAttr in, attr;
  in.size = 4 * kPage;
  ASSERT_EQ(fs_->SetAttr(ino_, PageFs::kSetSize, in, &attr), 0);
  in.size = 64 * kPage;
  ASSERT_EQ(fs_->SetAttr(ino_, PageFs::kSetSize, in, &attr), 0);
  usleep(50 * 1000);
  for (uint64_t b = 4; b < 64; ++b) {
    ASSERT_EQ(fs_->Read(ino_, b * kPage, kPage, &out, /*stream=*/true), 0);
    ASSERT_EQ(out, std::string(kPage, '\0')) << "block " << b;
  }
}

}  // namespace
}  // namespace pgbranch::pagefs
