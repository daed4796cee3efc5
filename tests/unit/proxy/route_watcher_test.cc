#include "proxy/route_watcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "tests/unit/proxy/fake_control_client.h"

namespace pgbranch::proxy {
namespace {

using testing::FakeControlClient;

class RouteWatcherTest : public ::testing::Test {
 protected:
  RouteWatcher::Options FastOptions() {
    RouteWatcher::Options o;
    o.wait_seconds = 30;
    o.initial_backoff = std::chrono::milliseconds(1);
    o.max_backoff = std::chrono::milliseconds(5);
    return o;
  }
  bool Acknowledged(int64_t version) {
    return control_.WaitUntil([&] {
      const auto& v = control_.polled_versions_locked();
      return std::find(v.begin(), v.end(), version) != v.end();
    });
  }

  FakeControlClient control_;
  std::mutex mu_;
  std::vector<RouteTable> applied_;
};

TEST_F(RouteWatcherTest, AppliesTablesAndAcknowledgesTheAppliedVersion) {
  control_.SetRoutes({1, {{"dev", 50001}}});
  RouteWatcher watcher(
      &control_,
      [&](const RouteTable& t) {
        std::lock_guard<std::mutex> lock(mu_);
        applied_.push_back(t);
        return absl::OkStatus();
      },
      FastOptions());
  watcher.Start();
  ASSERT_TRUE(Acknowledged(1));
  control_.SetRoutes({2, {{"dev", 50001}, {"main", 50002}}});
  ASSERT_TRUE(Acknowledged(2));
  EXPECT_EQ(watcher.applied_version(), 2);
  control_.Shutdown();
  watcher.Stop();
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(applied_.size(), 2u);
  EXPECT_EQ(applied_[1].routes.size(), 2u);
  EXPECT_EQ(control_.polled_versions().front(), 0);
}

TEST_F(RouteWatcherTest, DoesNotAcknowledgeAFailedApplyAndRetries) {
  control_.SetRoutes({5, {{"dev", 50001}}});
  std::atomic<int> attempts{0};
  RouteWatcher watcher(
      &control_,
      [&](const RouteTable&) {
        return ++attempts < 3 ? absl::UnavailableError("port in use") : absl::OkStatus();
      },
      FastOptions());
  watcher.Start();
  ASSERT_TRUE(Acknowledged(5));
  control_.Shutdown();
  watcher.Stop();
  EXPECT_EQ(attempts.load(), 3);
  // Every poll before the successful apply still carried the old version.
  std::vector<int64_t> polled = control_.polled_versions();
  auto first5 = std::find(polled.begin(), polled.end(), 5);
  EXPECT_GE(std::count(polled.begin(), first5, 0), 3);
}

TEST_F(RouteWatcherTest, RetriesWhenTheControllerIsDown) {
  control_.FailNextPolls(4);
  control_.SetRoutes({7, {}});
  RouteWatcher watcher(
      &control_, [](const RouteTable&) { return absl::OkStatus(); }, FastOptions());
  watcher.Start();
  ASSERT_TRUE(Acknowledged(7));
  control_.Shutdown();
  watcher.Stop();
}

TEST_F(RouteWatcherTest, StopEndsALongPoll) {
  control_.SetRoutes({1, {}});
  RouteWatcher watcher(
      &control_, [](const RouteTable&) { return absl::OkStatus(); }, FastOptions());
  watcher.Start();
  ASSERT_TRUE(Acknowledged(1));  // now waiting in a 30 s long poll
  control_.Shutdown();
  watcher.Stop();  // returns promptly: the test would time out otherwise
}

}  // namespace
}  // namespace pgbranch::proxy
