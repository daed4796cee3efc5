#include "compute/compute_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "compute/compute_metrics.h"
#include "compute/scram_verifier.h"

namespace pgbranch::compute {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kStart = 1'700'000'000'000'000;  // 2023-11-14T22:13:20Z

TEST(ComputeStatusTest, StartsAndRunsWithTheDocumentedShape) {
  FakeClock clock(kStart);
  ComputeStatus status(&clock, 55433);
  YAML::Node n = YAML::Load(ComputeStatus::ToJson(status.View()));
  EXPECT_EQ(n["state"].as<std::string>(), "starting");
  EXPECT_EQ(n["pg_port"].as<int>(), 55433);
  EXPECT_FALSE(n["busy"].as<bool>());
  EXPECT_EQ(n["started_at"].as<std::string>(), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(n["last_active"].as<std::string>(), "2023-11-14T22:13:20.000Z");

  clock.Advance(210'000);
  status.MarkRunning();
  n = YAML::Load(ComputeStatus::ToJson(status.View()));
  EXPECT_EQ(n["state"].as<std::string>(), "running");
  EXPECT_DOUBLE_EQ(n["startup_seconds"].as<double>(), 0.21);
  for (const char* key : {"active", "idle", "idle_in_transaction"}) {
    EXPECT_EQ(n["sessions"][key].as<int>(), 0) << key;
  }
  EXPECT_EQ(n["client_sessions"].as<int>(), 0);
  EXPECT_EQ(n["autovacuum_workers"].as<int>(), 0);
  EXPECT_EQ(n["message"].as<std::string>(), "");
}

TEST(ComputeStatusTest, AnyOpenSessionOrAutovacuumIsBusyAndMovesLastActive) {
  FakeClock clock(kStart);
  ComputeStatus status(&clock, 1);
  status.MarkRunning();
  struct Case {
    ActivitySnapshot a;
    bool busy;
  };
  ActivitySnapshot idle_session;
  idle_session.idle = idle_session.client_sessions = 1;
  ActivitySnapshot in_tx;
  in_tx.idle_in_transaction = in_tx.client_sessions = 1;
  ActivitySnapshot running;
  running.active = running.client_sessions = 1;
  ActivitySnapshot autovacuum;
  autovacuum.autovacuum_workers = 1;
  for (const Case& tc : {Case{idle_session, true}, Case{in_tx, true}, Case{running, true},
                         Case{autovacuum, true}, Case{ActivitySnapshot{}, false}}) {
    clock.Advance(1'000'000);
    status.Observe(tc.a);
    StatusView v = status.View();
    EXPECT_EQ(v.activity.busy(), tc.busy);
    EXPECT_EQ(v.last_active_micros == clock.NowMicros(), tc.busy);
  }
  // Idle: last_active stays at the last busy sample.
  EXPECT_EQ(status.View().last_active_micros, kStart + 4'000'000);
}

TEST(ComputeStatusTest, FailureStaysVisibleWithItsMessage) {
  FakeClock clock(kStart);
  ComputeStatus status(&clock, 1);
  status.MarkFailed("PostgreSQL exited: \"boom\"\nline 2");
  status.MarkStopping();
  status.MarkRunning();
  YAML::Node n = YAML::Load(ComputeStatus::ToJson(status.View()));
  EXPECT_EQ(n["state"].as<std::string>(), "failed");
  EXPECT_EQ(n["message"].as<std::string>(), "PostgreSQL exited: \"boom\"\nline 2");
}

TEST(ComputeMetricsTest, RendersStateAndSessions) {
  FakeClock clock(kStart);
  ComputeStatus status(&clock, 1);
  status.MarkRunning();
  ActivitySnapshot a;
  a.idle_in_transaction = 2;
  a.active = 1;
  a.client_sessions = 3;
  status.Observe(a);
  ComputeMetrics metrics;
  std::string text = metrics.Render(status.View());
  EXPECT_THAT(text, HasSubstr("pgbranch_compute_up 1\n"));
  EXPECT_THAT(text, HasSubstr("pgbranch_compute_state{state=\"running\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("pgbranch_compute_state{state=\"starting\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("pgbranch_compute_sessions{state=\"idle_in_transaction\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("pgbranch_compute_sessions{state=\"active\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("pgbranch_compute_busy 1\n"));
  EXPECT_THAT(text, HasSubstr("pgbranch_compute_last_active_timestamp_seconds 1700000000\n"));
}

TEST(ScramVerifierTest, MatchesOnlyTheRightPassword) {
  // Computed independently (Python hashlib) with salt 00..0f and 4096 iterations.
  const std::string verifier =
      "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$yERwYmHlx0VrpoYfOn54hMTjBUKWnmK42IDjnWgQWkk=:"
      "RQZr9F8QCYmmp35tAVzp0VB/kDwY283N+s24jDDliG4=";
  EXPECT_TRUE(ScramVerifierMatches(verifier, "correct horse"));
  EXPECT_FALSE(ScramVerifierMatches(verifier, "correct horse "));
  EXPECT_FALSE(ScramVerifierMatches(verifier, ""));
  EXPECT_FALSE(ScramVerifierMatches("md5abcdef", "correct horse"));
  EXPECT_FALSE(ScramVerifierMatches("", "correct horse"));
  EXPECT_FALSE(ScramVerifierMatches("SCRAM-SHA-256$x:y$z", "correct horse"));
}

}  // namespace
}  // namespace pgbranch::compute
