// ReadBatcher: concurrent page reads share Read RPCs; each caller gets exactly its own values and
// its own errors; and, through PageFs, a write racing a combined read never leaves a stale page.
#include "pageserver/pagefs/read_batcher.h"

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "pageserver/pagefs/pagefs.h"
#include "tests/unit/pagefs/fake_page_store.h"

namespace pgbranch::pagefs {
namespace {

using Values = std::vector<std::optional<std::string>>;

// A FakePageStore whose Read RPCs can be held at their start (so that others queue behind them),
// that records the keys of every RPC, that fails any RPC asking for a poisoned key, and that can
// run a hook once after an RPC asking for a given key has read its values.
class GatedStore : public FakePageStore {
 public:
  absl::StatusOr<Values> Read(uint64_t lsn, const std::vector<std::string>& keys) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      rpcs_.push_back(keys);
      ++entered_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !hold_; });
      for (const auto& k : keys) {
        if (bad_.count(k)) return absl::DataLossError("bad key " + k);
      }
    }
    auto r = FakePageStore::Read(lsn, keys);
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& k : keys) {
        if (k == hook_key_) hook.swap(hook_);
      }
    }
    if (hook) hook();
    return r;
  }
  void AfterReadOf(const std::string& key, std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    hook_key_ = key;
    hook_ = std::move(hook);
  }
  void Hold(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = hold;
    cv_.notify_all();
  }
  void WaitEntered(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }
  void AddBad(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    bad_.insert(key);
  }
  std::vector<std::vector<std::string>> rpcs() {
    std::lock_guard<std::mutex> lock(mu_);
    return rpcs_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  size_t entered_ = 0;
  std::set<std::string> bad_;
  std::string hook_key_;
  std::function<void()> hook_;
  std::vector<std::vector<std::string>> rpcs_;
};

std::string Key(int i) { return "k" + std::to_string(i); }

class ReadBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uint64_t gen = *store_.AcquireWriter();
    std::vector<PageMutation> muts;
    for (int i = 0; i < 100; ++i) muts.push_back({Key(i), "v" + std::to_string(i)});
    ASSERT_TRUE(store_.Commit(gen, muts).ok());
  }
  // Waits until `n` reads have arrived. A read is counted as it is queued (under the batcher's
  // lock), so with every RPC slot held, the reads after the held ones are all queued.
  static void WaitQueued(ReadBatcher& b, uint64_t n) {
    while (b.stats().reads < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  GatedStore store_;
};

TEST_F(ReadBatcherTest, AloneGoesAtOnceWithItsOwnKeys) {
  ReadBatcher b(&store_, {});
  auto r = b.Read(0, {Key(3), "absent", Key(4)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (Values{"v3", std::nullopt, "v4"}));
  EXPECT_EQ(store_.rpcs().size(), 1u);
  EXPECT_EQ(b.stats().combined_reads, 0u);
}

TEST_F(ReadBatcherTest, MissesWhileAnRpcIsInFlightShareTheNextRpc) {
  ReadBatcher b(&store_, {.max_in_flight = 1});
  store_.Hold(true);
  absl::StatusOr<Values> first;
  std::thread t0([&] { first = b.Read(0, {Key(0)}); });
  store_.WaitEntered(1);  // the first RPC is in flight (held)
  constexpr int kWaiters = 8;
  std::vector<absl::StatusOr<Values>> got(kWaiters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&, i] { got[i] = b.Read(0, {Key(10 + 2 * i), Key(11 + 2 * i)}); });
  }
  WaitQueued(b, 1 + kWaiters);
  store_.Hold(false);
  t0.join();
  for (auto& t : threads) t.join();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, (Values{"v0"}));
  for (int i = 0; i < kWaiters; ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status();
    EXPECT_EQ(*got[i], (Values{"v" + std::to_string(10 + 2 * i), "v" + std::to_string(11 + 2 * i)}))
        << "reader " << i;
  }
  // One RPC for the first read, one for all the reads queued behind it.
  auto rpcs = store_.rpcs();
  ASSERT_EQ(rpcs.size(), 2u);
  EXPECT_EQ(rpcs[1].size(), 2u * kWaiters);
  EXPECT_EQ(b.stats().combined_reads, static_cast<uint64_t>(kWaiters));
  EXPECT_EQ(b.stats().rpcs, 2u);
}

TEST_F(ReadBatcherTest, UpToMaxInFlightRpcsRunAtOnce) {
  ReadBatcher b(&store_, {.max_in_flight = 2});
  store_.Hold(true);
  absl::StatusOr<Values> r[4];
  std::thread t0([&] { r[0] = b.Read(0, {Key(0)}); });
  std::thread t1([&] { r[1] = b.Read(0, {Key(1)}); });
  store_.WaitEntered(2);  // both went at once, neither waited for the other
  std::thread t2([&] { r[2] = b.Read(0, {Key(2)}); });
  std::thread t3([&] { r[3] = b.Read(0, {Key(3)}); });
  WaitQueued(b, 4);
  EXPECT_EQ(store_.rpcs().size(), 2u);  // the third and fourth wait for a slot
  store_.Hold(false);
  for (std::thread* t : {&t0, &t1, &t2, &t3}) t->join();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(r[i].ok());
    EXPECT_EQ(*r[i], (Values{"v" + std::to_string(i)}));
  }
  EXPECT_EQ(store_.rpcs().size(), 3u);  // and then share one RPC
}

TEST_F(ReadBatcherTest, BatchesStayUnderTheKeyLimitAndApartByLsn) {
  ReadBatcher b(&store_, {.max_in_flight = 1, .max_batch_keys = 4});
  uint64_t old_lsn = *store_.HeadLsn();
  uint64_t gen = *store_.AcquireWriter();
  ASSERT_TRUE(store_.Commit(gen, std::vector<PageMutation>{{Key(1), "new"}}).ok());
  store_.Hold(true);
  std::thread t0([&] { (void)b.Read(0, {Key(0)}); });
  store_.WaitEntered(1);
  absl::StatusOr<Values> at_head[3], at_old;
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { at_head[i] = b.Read(0, {Key(1), Key(2)}); });
  }
  threads.emplace_back([&] { at_old = b.Read(old_lsn, {Key(1)}); });
  WaitQueued(b, 5);
  store_.Hold(false);
  t0.join();
  for (auto& t : threads) t.join();
  for (auto& r : at_head) {
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, (Values{"new", "v2"}));
  }
  ASSERT_TRUE(at_old.ok());
  EXPECT_EQ(*at_old, (Values{"v1"}));
  for (const auto& rpc : store_.rpcs()) EXPECT_LE(rpc.size(), 4u);
  // 1 (first) + 2 (three 2-key reads, at most 4 keys each) + 1 (the old LSN) RPCs.
  EXPECT_EQ(store_.rpcs().size(), 4u);
}

TEST_F(ReadBatcherTest, AnErrorOfOneReadFailsOnlyThatRead) {
  ReadBatcher b(&store_, {.max_in_flight = 1});
  store_.AddBad(Key(50));
  store_.Hold(true);
  std::thread t0([&] { (void)b.Read(0, {Key(0)}); });
  store_.WaitEntered(1);
  absl::StatusOr<Values> good1, bad, good2;
  std::thread a([&] { good1 = b.Read(0, {Key(1)}); });
  WaitQueued(b, 2);
  std::thread c([&] { bad = b.Read(0, {Key(2), Key(50)}); });
  WaitQueued(b, 3);
  std::thread d([&] { good2 = b.Read(0, {Key(3)}); });
  WaitQueued(b, 4);
  store_.Hold(false);
  for (std::thread* t : {&t0, &a, &c, &d}) t->join();
  ASSERT_TRUE(good1.ok()) << good1.status();
  EXPECT_EQ(*good1, (Values{"v1"}));
  ASSERT_TRUE(good2.ok()) << good2.status();
  EXPECT_EQ(*good2, (Values{"v3"}));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  // The combined RPC failed, then each of its three reads went alone.
  EXPECT_EQ(store_.rpcs().size(), 1u + 1u + 3u);
}

TEST_F(ReadBatcherTest, ManyThreadsEachGetTheirOwnValues) {
  ReadBatcher b(&store_, {.max_in_flight = 2, .max_batch_keys = 16});
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < 200; ++n) {
        int i = (t * 31 + n * 7) % 100, j = (i + 1 + t) % 100;
        auto r = b.Read(0, {Key(i), Key(j)});
        if (!r.ok() || *r != Values{"v" + std::to_string(i), "v" + std::to_string(j)}) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(b.stats().reads, 1600u);
  EXPECT_LE(b.stats().rpcs, 1600u);
}

// Through PageFs: a write (and its flush) lands after a combined read fetched the old page and
// before the reader uses it. The read starts over (the inode's version moved) and nothing stale is
// answered or cached.
TEST(PageFsBatchedReadTest, AWriteRacingABatchedReadLeavesNoStalePage) {
  GatedStore store;
  FakeClock clock;
  PageFsOptions options;
  options.read_rpcs_in_flight = 1;
  options.readahead_pages = 0;
  constexpr uint64_t kPage = fs::kPageSize;
  uint64_t ino_a = 0, ino_b = 0;
  {
    PageFs setup(&store, options, &clock);
    ASSERT_TRUE(setup.Mount().ok());
    fs::InodeAttr attr;
    ASSERT_EQ(setup.Create(fs::kRootIno, "a", 0644, O_RDWR | O_CREAT, 0, 0, &attr, &ino_a), 0);
    ASSERT_EQ(setup.Create(fs::kRootIno, "b", 0644, O_RDWR | O_CREAT, 0, 0, &attr, &ino_b), 0);
    ASSERT_EQ(setup.Write(ino_a, 0, std::string(2 * kPage, 'a'), false), 0);
    ASSERT_EQ(setup.Write(ino_b, 0, std::string(kPage, 'o'), false), 0);
    ASSERT_TRUE(setup.FlushAll().ok());
  }
  PageFs pfs(&store, options, &clock);  // a fresh mount: nothing cached
  ASSERT_TRUE(pfs.Mount().ok());
  fs::InodeAttr attr;
  ASSERT_EQ(pfs.Lookup(fs::kRootIno, "a", &attr, &ino_a), 0);
  ASSERT_EQ(pfs.Lookup(fs::kRootIno, "b", &attr, &ino_b), 0);
  ASSERT_EQ(pfs.Open(ino_a, O_RDWR), 0);
  ASSERT_EQ(pfs.Open(ino_b, O_RDWR), 0);
  auto page_reads = [&] { return pfs.Stats().page_reads; };
  uint64_t reads0 = page_reads();
  store.Hold(true);
  std::string a0, a1, b0;
  std::thread t0([&] { EXPECT_EQ(pfs.Read(ino_a, 0, kPage, &a0), 0); });  // in flight, held
  while (page_reads() < reads0 + 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::thread t1([&] { EXPECT_EQ(pfs.Read(ino_b, 0, kPage, &b0), 0); });  // queued
  while (page_reads() < reads0 + 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::thread t2([&] { EXPECT_EQ(pfs.Read(ino_a, kPage, kPage, &a1), 0); });  // queued
  while (page_reads() < reads0 + 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  size_t rpcs_before = store.rpcs().size();
  // The combined RPC (b's page 0 and a's page 1) has read the old page of b: now b is written
  // and flushed, before the reader of b gets the answer.
  store.AfterReadOf(fs::PageKey(ino_b, 0), [&] {
    EXPECT_EQ(pfs.Write(ino_b, 0, std::string(kPage, 'n'), false), 0);
    EXPECT_EQ(pfs.Fsync(ino_b), 0);
  });
  store.Hold(false);
  t0.join();
  t1.join();
  t2.join();
  auto rpcs = store.rpcs();
  ASSERT_GE(rpcs.size(), rpcs_before + 1);
  EXPECT_EQ(rpcs[rpcs_before],
            (std::vector<std::string>{fs::PageKey(ino_b, 0), fs::PageKey(ino_a, 1)}));
  EXPECT_TRUE(a0 == std::string(kPage, 'a')) << "a0 is not all 'a'";
  EXPECT_TRUE(a1 == std::string(kPage, 'a')) << "a1 is not all 'a'";
  EXPECT_TRUE(b0 == std::string(kPage, 'n')) << "b0 is not all 'n'";
  std::string again;
  ASSERT_EQ(pfs.Read(ino_b, 0, kPage, &again), 0);
  EXPECT_TRUE(again == std::string(kPage, 'n')) << "again is not all 'n'";
}

}  // namespace
}  // namespace pgbranch::pagefs
