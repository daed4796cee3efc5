#include "proxy/activity_reporter.h"

#include <gtest/gtest.h>

#include "tests/unit/proxy/fake_control_client.h"

namespace pgbranch::proxy {
namespace {

using testing::FakeControlClient;

class ActivityReporterTest : public ::testing::Test {
 protected:
  // Whether some report (from the `from`-th on) says `endpoint` has `n` connections.
  bool Reported(const std::string& endpoint, int n, size_t from = 0) {
    return control_.WaitUntil([&] {
      const auto& reports = control_.reports_locked();
      for (size_t i = from; i < reports.size(); ++i) {
        auto it = reports[i].find(endpoint);
        if (it != reports[i].end() && it->second == n) return true;
      }
      return false;
    });
  }

  FakeControlClient control_;
  ConnectionRegistry registry_;
};

TEST_F(ActivityReporterTest, ReportsChangesAndTheReturnToZero) {
  ActivityReporter reporter(&control_, &registry_, {});
  reporter.Start();
  registry_.Open("dev");
  registry_.Open("dev");
  ASSERT_TRUE(Reported("dev", 2));
  registry_.Close("dev");
  registry_.Close("dev");
  ASSERT_TRUE(Reported("dev", 0));
  reporter.Stop();
}

TEST_F(ActivityReporterTest, ZeroIsPrunedOnlyAfterItWasReported) {
  ActivityReporter reporter(&control_, &registry_, {});
  reporter.Start();
  registry_.Open("dev");
  registry_.Close("dev");
  ASSERT_TRUE(Reported("dev", 0));
  // After the zero went out, the heartbeat stops mentioning the endpoint.
  size_t n = control_.reports().size();
  ASSERT_TRUE(control_.WaitUntil([&] {
    const auto& reports = control_.reports_locked();
    return reports.size() > n && reports.back().count("dev") == 0;
  }));
  reporter.Stop();
}

TEST_F(ActivityReporterTest, HeartbeatsWithoutChanges) {
  ActivityReporter::Options o;
  o.max_interval = std::chrono::milliseconds(20);
  o.min_interval = std::chrono::milliseconds(1);
  ActivityReporter reporter(&control_, &registry_, o);
  reporter.Start();
  ASSERT_TRUE(control_.WaitUntil([&] { return control_.reports_locked().size() >= 3; }));
  reporter.Stop();
}

TEST_F(ActivityReporterTest, KeepsReportingAfterFailures) {
  control_.SetActivityStatus(absl::UnavailableError("down"));
  ActivityReporter reporter(&control_, &registry_, {});
  reporter.Start();
  registry_.Open("dev");
  ASSERT_TRUE(Reported("dev", 1));
  control_.SetActivityStatus(absl::OkStatus());
  size_t n = control_.reports().size();
  ASSERT_TRUE(Reported("dev", 1, n)) << "the heartbeat resends the state";
  reporter.Stop();
}

TEST_F(ActivityReporterTest, StopSendsALastReport) {
  ActivityReporter reporter(&control_, &registry_, {});
  reporter.Start();
  registry_.Open("dev");
  ASSERT_TRUE(Reported("dev", 1));
  registry_.Close("dev");
  size_t n = control_.reports().size();
  reporter.Stop();
  EXPECT_GT(control_.reports().size(), n);
  EXPECT_EQ(control_.reports().back().at("dev"), 0);
}

}  // namespace
}  // namespace pgbranch::proxy
