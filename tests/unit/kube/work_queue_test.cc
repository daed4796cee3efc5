#include "operator/kube/work_queue.h"

#include <thread>

#include "gtest/gtest.h"

namespace pgbranch::kube {
namespace {

TEST(WorkQueueTest, DeduplicatesWaitingKeys) {
  WorkQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), "b");
}

TEST(WorkQueueTest, KeyAddedWhileInFlightIsProcessedOnceMoreAfterDone) {
  WorkQueue q;
  q.Add("a");
  auto k = q.Get();
  ASSERT_EQ(k, "a");
  q.Add("a");
  q.Add("a");
  EXPECT_EQ(q.Len(), 0u);  // not handed to a second worker while in flight
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u);
  EXPECT_EQ(q.Get(), "a");
  q.Done("a");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueueTest, RateLimitedBacksOffExponentiallyUntilForget) {
  WorkQueue q({.base_delay = absl::Milliseconds(20), .max_delay = absl::Milliseconds(80)});
  q.AddRateLimited("a");  // 20 ms
  EXPECT_EQ(q.Len(), 0u);
  absl::Time start = absl::Now();
  EXPECT_EQ(q.Get(), "a");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(19));
  q.Done("a");
  q.AddRateLimited("a");  // 40 ms
  q.AddRateLimited("a");  // 80 ms would be later: the earlier time wins
  EXPECT_EQ(q.NumRequeues("a"), 3);
  start = absl::Now();
  EXPECT_EQ(q.Get(), "a");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(39));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(75));
  q.Done("a");
  q.Forget("a");
  EXPECT_EQ(q.NumRequeues("a"), 0);
}

TEST(WorkQueueTest, AddAfterAndShutDown) {
  WorkQueue q;
  q.AddAfter("t", absl::Milliseconds(30));
  EXPECT_EQ(q.DelayedLen(), 1u);
  absl::Time start = absl::Now();
  EXPECT_EQ(q.Get(), "t");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(29));
  std::thread waiter([&] { EXPECT_EQ(q.Get(), std::nullopt); });
  q.ShutDown();
  waiter.join();
}

TEST(WorkQueueTest, ManyWorkersNeverShareAKey) {
  WorkQueue q;
  std::atomic<int> in_flight{0}, processed{0};
  std::atomic<bool> overlap{false};
  std::vector<std::thread> workers;
  for (int i = 0; i < 4; ++i) {
    workers.emplace_back([&] {
      while (auto k = q.Get()) {
        if (in_flight.fetch_add(1) != 0) overlap = true;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        in_flight.fetch_sub(1);
        processed++;
        q.Done(*k);
      }
    });
  }
  for (int i = 0; i < 200; ++i) q.Add("same");
  while (q.Len() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  q.ShutDown();
  for (auto& w : workers) w.join();
  EXPECT_FALSE(overlap.load());
  EXPECT_GE(processed.load(), 1);
}

}  // namespace
}  // namespace pgbranch::kube
