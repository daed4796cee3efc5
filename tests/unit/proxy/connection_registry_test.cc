#include "proxy/connection_registry.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "proxy/cancel_key_map.h"

namespace pgbranch::proxy {
namespace {

TEST(ConnectionRegistryTest, CountsPerEndpoint) {
  ConnectionRegistry r;
  r.Open("dev");
  r.Open("dev");
  r.Open("main");
  EXPECT_EQ(r.Count("dev"), 2);
  EXPECT_EQ(r.Count("main"), 1);
  EXPECT_EQ(r.Count("other"), 0);
  EXPECT_EQ(r.Total(), 3);
  r.Close("dev");
  r.Close("main");
  EXPECT_EQ(r.Count("dev"), 1);
  EXPECT_EQ(r.Total(), 1);
  auto snap = r.Snapshot();
  EXPECT_EQ(snap.at("dev"), 1);
  EXPECT_EQ(snap.at("main"), 0) << "a zero stays until reported";
}

TEST(ConnectionRegistryTest, UnmatchedCloseNeverGoesNegative) {
  ConnectionRegistry r;
  r.Close("dev");
  EXPECT_EQ(r.Count("dev"), 0);
  EXPECT_EQ(r.Total(), 0);
}

TEST(ConnectionRegistryTest, PruneDropsOnlyReportedZeros) {
  ConnectionRegistry r;
  r.Open("a");
  r.Open("b");
  r.Close("a");
  r.Close("b");
  auto reported = r.Snapshot();
  r.Open("b");  // reopened after the report: must stay
  r.PruneZeros(reported);
  auto snap = r.Snapshot();
  EXPECT_EQ(snap.count("a"), 0u);
  EXPECT_EQ(snap.at("b"), 1);
}

TEST(ConnectionRegistryTest, VersionChangesWakeWaiters) {
  ConnectionRegistry r;
  uint64_t v0 = 0;
  r.Snapshot(&v0);
  std::thread opener([&] { r.Open("dev"); });
  uint64_t v1 = r.WaitForChange(v0, std::chrono::steady_clock::now() + std::chrono::minutes(1));
  opener.join();
  EXPECT_NE(v1, v0);
  // Shutdown releases a waiter that would otherwise wait a minute.
  std::thread stopper([&] { r.Shutdown(); });
  r.WaitForChange(v1, std::chrono::steady_clock::now() + std::chrono::minutes(1));
  stopper.join();
}

TEST(ConnectionRegistryTest, ConcurrentOpenClose) {
  ConnectionRegistry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        r.Open("dev");
        r.Close("dev");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.Count("dev"), 0);
  EXPECT_EQ(r.Total(), 0);
}

TEST(CancelKeyMapTest, AddFindRemove) {
  CancelKeyMap m;
  m.Add(10, 99, {"dev", {"127.0.0.1", 5433}});
  m.Add(10, 100, {"main", {"127.0.0.1", 5434}});
  auto t = m.Find(10, 99);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->endpoint, "dev");
  EXPECT_EQ(t->backend.port, 5433);
  EXPECT_FALSE(m.Find(11, 99).has_value()) << "pid and key must both match";
  EXPECT_EQ(m.size(), 2u);
  m.Remove(10, 99);
  EXPECT_FALSE(m.Find(10, 99).has_value());
  EXPECT_TRUE(m.Find(10, 100).has_value());
  m.Remove(10, 99);  // twice is harmless
  EXPECT_EQ(m.size(), 1u);
}

}  // namespace
}  // namespace pgbranch::proxy
