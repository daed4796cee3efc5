#include "operator/control/endpoint_reconciler.h"

#include <gtest/gtest.h>

#include "operator/control/conditions.h"
#include "tests/unit/control/reconciler_fixture.h"

namespace pgbranch::control::testing {
namespace {

class EndpointReconcilerTest : public ReconcilerFixture {
 protected:
  void SetUp() override {
    ApplyBranch("main", "{noExpiry: true}");
    ReconcileBranch("main");
  }
  // Creates the endpoint and brings its compute to Running.
  void RunningEndpoint(const std::string& spec) {
    ApplyEndpoint("ep", spec);
    ReconcileEndpoint("ep");
    ASSERT_EQ(computes_.Observe("default", "ep").state, ComputeState::kStarting);
    computes_.FinishStarting("default/ep");
    ReconcileEndpoint("ep");
    ASSERT_EQ(GetEndpoint("ep").status.phase, kPhaseRunning);
  }
  ComputeState State() { return computes_.Observe("default", "ep").state; }
};

TEST_F(EndpointReconcilerTest, StartsOnCreationAndSuspendsWhenIdle) {
  RunningEndpoint("{branch: main, suspendTimeout: 5m}");
  EXPECT_TRUE(IsConditionTrue(GetEndpoint("ep").status.conditions, "Ready"));
  EXPECT_EQ(computes_.specs["default/ep"].timeline_id, "main");
  Advance(absl::Minutes(4));
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kRunning);
  Advance(absl::Minutes(2));
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kStopping);
  EXPECT_EQ(GetEndpoint("ep").status.phase, kPhaseSuspending);
  computes_.FinishStopping("default/ep");
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kAbsent);
  EXPECT_EQ(GetEndpoint("ep").status.phase, kPhaseSuspended);
  EXPECT_TRUE(IsConditionTrue(GetEndpoint("ep").status.conditions, "Ready"));
}

TEST_F(EndpointReconcilerTest, ASecondReadWriteEndpointOnABranchIsAConflict) {
  RunningEndpoint("{branch: main}");
  ApplyEndpoint("ep2", "{branch: main}");
  ReconcileEndpoint("ep2");
  Endpoint second = GetEndpoint("ep2");
  EXPECT_EQ(second.status.phase, kPhaseConflict);
  const Condition* ready = FindCondition(second.status.conditions, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->reason, "Conflict");
  EXPECT_NE(ready->message.find("read-write endpoint ep"), std::string::npos) << ready->message;
  EXPECT_EQ(computes_.Observe("default", "ep2").state, ComputeState::kAbsent) << "no compute";
  // The holder keeps running; read-only endpoints are not limited.
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kRunning);
  ApplyEndpoint("ro", "{branch: main, type: ReadOnly}");
  ReconcileEndpoint("ro");
  EXPECT_EQ(computes_.Observe("default", "ro").state, ComputeState::kStarting);
}

TEST_F(EndpointReconcilerTest, NeverSuspendsWhileAClientIsConnectedAtTheProxy) {
  RunningEndpoint("{branch: main, suspendTimeout: 1m}");
  activity_.SetConnections({{"default/ep", 1}}, Now());
  Advance(absl::Hours(3));
  activity_.SetConnections({{"default/ep", 1}}, Now());
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kRunning);
  activity_.SetConnections({}, Now());
  Advance(absl::Seconds(59));
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kRunning) << "idle time counts from the last connection";
  Advance(absl::Seconds(2));
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kStopping);
}

TEST_F(EndpointReconcilerTest, NeverSuspendsWhileTheComputeReportsASession) {
  RunningEndpoint("{branch: main, suspendTimeout: 1m}");
  computes_.computes["default/ep"].busy = true;  // e.g. idle in transaction
  Advance(absl::Hours(1));
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kRunning);
}

TEST_F(EndpointReconcilerTest, ZeroSuspendTimeoutNeverSuspends) {
  RunningEndpoint("{branch: main, suspendTimeout: 0s}");
  Advance(absl::Hours(100));
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kRunning);
}

TEST_F(EndpointReconcilerTest, AWakeStartsASuspendedEndpoint) {
  RunningEndpoint("{branch: main, suspendTimeout: 1m}");
  Advance(absl::Minutes(2));
  ReconcileEndpoint("ep");
  computes_.FinishStopping("default/ep");
  ReconcileEndpoint("ep");
  ASSERT_EQ(State(), ComputeState::kAbsent);
  activity_.RecordWake("default/ep", Now());
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kStarting);
  EXPECT_EQ(GetEndpoint("ep").status.phase, kPhaseStarting);
}

TEST_F(EndpointReconcilerTest, AWakeDuringSuspendStartsAgainOnceStopped) {
  RunningEndpoint("{branch: main, suspendTimeout: 1m}");
  Advance(absl::Minutes(2));
  ReconcileEndpoint("ep");
  ASSERT_EQ(State(), ComputeState::kStopping);
  activity_.RecordWake("default/ep", Now());
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kStopping);
  computes_.FinishStopping("default/ep");
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kStarting);
}

TEST_F(EndpointReconcilerTest, FailedComputeIsReportedAndRestartedWithBackoffOrOnWake) {
  RunningEndpoint("{branch: main, suspendTimeout: 1h}");
  computes_.Fail("default/ep", "PostgreSQL exited");
  ReconcileEndpoint("ep");
  Endpoint e = GetEndpoint("ep");
  EXPECT_EQ(e.status.phase, kPhaseFailed);
  EXPECT_EQ(e.status.message, "PostgreSQL exited");
  EXPECT_EQ(e.status.restarts, 1);
  ASSERT_TRUE(endpoints_->LastFailure("default", "ep"));
  EXPECT_EQ(State(), ComputeState::kAbsent);
  // Within the back-off nothing restarts...
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kAbsent);
  // ...but a client's wake does.
  Advance(absl::Milliseconds(1));
  activity_.RecordWake("default/ep", Now());
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kStarting);
}

TEST_F(EndpointReconcilerTest, ReadOnlyRunsOnAnEphemeralTimelineDroppedOnSuspend) {
  timelines_.timelines["main"].head_lsn = 7;
  ApplyEndpoint("ep", "{branch: main, type: ReadOnly, lsn: 5, suspendTimeout: 1m}");
  ReconcileEndpoint("ep");
  std::string ro = EndpointReconciler::ReadOnlyTimelineId("ep");
  ASSERT_TRUE(timelines_.timelines.count(ro));
  EXPECT_EQ(timelines_.timelines[ro].ancestor_lsn, 5u);
  EXPECT_TRUE(computes_.specs["default/ep"].read_only);
  EXPECT_EQ(computes_.specs["default/ep"].timeline_id, ro);
  computes_.FinishStarting("default/ep");
  ReconcileEndpoint("ep");
  Advance(absl::Minutes(2));
  ReconcileEndpoint("ep");
  computes_.FinishStopping("default/ep");
  ReconcileEndpoint("ep");
  EXPECT_FALSE(timelines_.timelines.count(ro));
}

TEST_F(EndpointReconcilerTest, WaitsForItsBranch) {
  ApplyEndpoint("ep", "{branch: later}");
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kAbsent);
  EXPECT_EQ(GetEndpoint("ep").status.phase, kPhasePending);
  EXPECT_NE(FindCondition(GetEndpoint("ep").status.conditions, "Ready")->message.find("later"),
            std::string::npos);
}

TEST_F(EndpointReconcilerTest, DeletionStopsTheComputeFirst) {
  RunningEndpoint("{branch: main}");
  ASSERT_TRUE(store_.UserDeleteEndpoint("default", "ep").ok());
  ReconcileEndpoint("ep");
  EXPECT_TRUE(store_.GetEndpoint("default", "ep"));
  EXPECT_EQ(State(), ComputeState::kStopping);
  computes_.FinishStopping("default/ep");
  ReconcileEndpoint("ep");
  EXPECT_FALSE(store_.GetEndpoint("default", "ep"));
}

// `pgbranch endpoint suspend`: the compute stops now even with a session open, stays stopped
// (suspendTimeout 0 would otherwise start it again), and a wake or start brings it back.
TEST_F(EndpointReconcilerTest, ASuspendRequestStopsTheComputeUntilAWakeOrStart) {
  RunningEndpoint("{branch: main, suspendTimeout: 0s}");
  computes_.computes["default/ep"].busy = true;
  Advance(absl::Seconds(1));
  ASSERT_TRUE(store_.RequestSuspend("default", "ep").ok());
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kStopping);
  computes_.FinishStopping("default/ep");
  ReconcileEndpoint("ep");
  EXPECT_EQ(GetEndpoint("ep").status.phase, kPhaseSuspended);
  Advance(absl::Minutes(10));
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kAbsent) << "stays suspended";
  // A start request brings it back, and counts as activity.
  Advance(absl::Seconds(1));
  ASSERT_TRUE(store_.RequestStart("default", "ep").ok());
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kStarting);
  computes_.FinishStarting("default/ep");
  ReconcileEndpoint("ep");
  // Suspended again, then woken by a connection.
  Advance(absl::Seconds(1));
  ASSERT_TRUE(store_.RequestSuspend("default", "ep").ok());
  ReconcileEndpoint("ep");
  computes_.FinishStopping("default/ep");
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kAbsent);
  Advance(absl::Seconds(1));
  activity_.RecordWake("default/ep", Now());
  ReconcileEndpoint("ep");
  EXPECT_EQ(State(), ComputeState::kStarting);
}

// The wake that ended a suspension is remembered across a controller restart (which forgets
// wakes): the old request does not stop the compute again.
TEST_F(EndpointReconcilerTest, AWakeAfterASuspendRequestSurvivesAControllerRestart) {
  RunningEndpoint("{branch: main, suspendTimeout: 0s}");
  Advance(absl::Seconds(1));
  ASSERT_TRUE(store_.RequestSuspend("default", "ep").ok());
  ReconcileEndpoint("ep");
  computes_.FinishStopping("default/ep");
  ReconcileEndpoint("ep");
  Advance(absl::Seconds(1));
  activity_.RecordWake("default/ep", Now());
  ReconcileEndpoint("ep");
  computes_.FinishStarting("default/ep");
  ReconcileEndpoint("ep");
  ASSERT_EQ(State(), ComputeState::kRunning);
  // A new controller: new activity tracker and reconciler, same store and computes.
  ActivityTracker fresh;
  ReconcileContext ctx;
  ctx.store = &store_;
  ctx.timelines = &timelines_;
  ctx.computes = &computes_;
  ctx.activity = &fresh;
  ctx.clock = &clock_;
  EndpointReconciler restarted(ctx);
  Advance(absl::Seconds(1));
  ASSERT_TRUE(restarted.Reconcile("default", "ep").ok());
  EXPECT_EQ(State(), ComputeState::kRunning);
}

TEST_F(EndpointReconcilerTest, AWriterBeingDeletedHoldsItsBranchUntilItsComputeIsGone) {
  RunningEndpoint("{branch: main}");
  ASSERT_TRUE(store_.UserDeleteEndpoint("default", "ep").ok());
  ApplyEndpoint("next", "{branch: main}");
  ReconcileEndpoint("next");
  EXPECT_EQ(GetEndpoint("next").status.phase, kPhaseConflict) << "the old writer still runs";
  EXPECT_EQ(computes_.Observe("default", "next").state, ComputeState::kAbsent);
  ReconcileEndpoint("ep");
  computes_.FinishStopping("default/ep");
  ReconcileEndpoint("ep");
  ReconcileEndpoint("next");
  EXPECT_EQ(computes_.Observe("default", "next").state, ComputeState::kStarting);
}

}  // namespace
}  // namespace pgbranch::control::testing
