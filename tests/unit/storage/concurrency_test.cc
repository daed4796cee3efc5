// Commits, reads, branch creation and maintenance (checkpoints that freeze and flush in-memory
// layers while commits go on, compaction, GC) all at once; afterwards, and after a crash, every
// acknowledged write reads back at its LSN.
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/unit/storage/engine_test_util.h"

namespace pgbranch::storage {
namespace {

TEST(ConcurrencyTest, CommitsReadsAndMaintenanceInterleave) {
  EngineHarness h;
  ASSERT_TRUE(h->CreateTenant("t", "main").ok());
  uint64_t gen = *h->AcquireWriter("t", "main");
  constexpr int kWriters = 4, kBatches = 400;
  std::mutex mu;
  std::map<std::pair<std::string, uint64_t>, std::string> acked;  // (key, lsn) -> value
  std::atomic<bool> done{false};
  std::atomic<int> read_errors{0};

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<Mutation> batch;
        for (int k = 0; k < 3; ++k) {
          batch.push_back({absl::StrCat("w", w, "/k", (b + k) % 17),
                           std::string(100 + (b * 37 + k) % 3000, static_cast<char>('a' + b % 26)),
                           false});
        }
        auto r = h->Commit("t", "main", gen, batch);
        ASSERT_TRUE(r.ok()) << r.status();
        std::lock_guard<std::mutex> lock(mu);
        for (auto& m : batch) acked[{m.key, r->lsn}] = m.value;
      }
    });
  }
  threads.emplace_back([&] {  // readers of whatever was acknowledged
    std::mt19937 rng(1);
    while (!done) {
      std::pair<std::string, uint64_t> probe;
      std::string want;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (acked.empty()) continue;
        auto it = acked.begin();
        std::advance(it, rng() % acked.size());
        probe = it->first;
        want = it->second;
      }
      auto r = h->Read("t", "main", probe.second, {probe.first});
      if (!r.ok() || !r->values[0].found || r->values[0].data != want) ++read_errors;
    }
  });
  threads.emplace_back([&] {  // maintenance and branching
    int i = 0;
    while (!done) {
      EXPECT_TRUE(h->Checkpoint().ok());
      if (i % 3 == 0) {
        EXPECT_TRUE(h->RunGc().ok());
      }
      CreateTimelineOptions o;
      o.tenant_id = "t";
      o.ancestor_id = "main";
      EXPECT_TRUE(h->CreateTimeline(o).ok());
      ++i;
    }
  });
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  for (size_t i = kWriters; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(read_errors, 0);
  EXPECT_GT(h->Stats().checkpoints, 0u);

  auto verify = [&] {
    for (const auto& [probe, want] : acked) {
      auto r = h->Read("t", "main", probe.second, {probe.first});
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_TRUE(r->values[0].found) << probe.first << "@" << probe.second;
      ASSERT_EQ(r->values[0].data, want) << probe.first << "@" << probe.second;
    }
  };
  verify();
  h.Crash();
  verify();
}

}  // namespace
}  // namespace pgbranch::storage
