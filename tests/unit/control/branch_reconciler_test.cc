#include "operator/control/branch_reconciler.h"

#include <gtest/gtest.h>

#include "operator/control/conditions.h"
#include "operator/model/json.h"
#include "tests/unit/control/reconciler_fixture.h"

namespace pgbranch::control::testing {
namespace {

class BranchReconcilerTest : public ReconcilerFixture {};

TEST_F(BranchReconcilerTest, CreatesRootAndChildTimelines) {
  ApplyBranch("main", "{noExpiry: true}");
  ApplyBranch("dev", "{parent: main, noExpiry: true}");
  // dev first: its parent has no timeline yet, so it waits and says why.
  ReconcileBranch("dev");
  EXPECT_EQ(GetBranch("dev").status.phase, kPhasePending);
  EXPECT_EQ(FindCondition(GetBranch("dev").status.conditions, "Ready")->reason, "ParentNotReady");
  ReconcileBranch("main");
  timelines_.timelines["main"].head_lsn = 42;
  ReconcileBranch("dev");
  Branch dev = GetBranch("dev");
  EXPECT_EQ(dev.status.phase, kPhaseReady);
  EXPECT_EQ(dev.status.timeline_id, "dev");
  EXPECT_EQ(dev.status.parent_timeline_id, "main");
  EXPECT_EQ(dev.status.parent_lsn, 42u);
  EXPECT_TRUE(IsConditionTrue(dev.status.conditions, "Ready"));
  EXPECT_EQ(dev.status.observed_generation, dev.metadata.generation);
  EXPECT_EQ(dev.status.conditions.front().type, "Ready");
}

TEST_F(BranchReconcilerTest, ParentsRunningWriterCheckpointsBeforeABranchAtItsHead) {
  computes_.timelines_at_checkpoint = [this] { return timelines_.timelines.count("dev"); };
  ApplyBranch("main", "{noExpiry: true}");
  ApplyEndpoint("main", "{branch: main}");
  ApplyEndpoint("main-ro", "{branch: main, type: ReadOnly}");
  ReconcileBranch("main");
  ReconcileEndpoint("main");
  ReconcileEndpoint("main-ro");
  computes_.FinishStarting("default/main-ro");
  // Not running yet: nothing to checkpoint.
  ApplyBranch("early", "{parent: main, noExpiry: true}");
  ReconcileBranch("early");
  EXPECT_TRUE(computes_.checkpoints.empty());
  computes_.FinishStarting("default/main");
  ApplyBranch("dev", "{parent: main, noExpiry: true}");
  ReconcileBranch("dev");
  // Only the read-write endpoint, and before dev's timeline existed.
  EXPECT_EQ(computes_.checkpoints, std::vector<std::string>{"default/main"});
  EXPECT_EQ(computes_.checkpoint_timelines, std::vector<size_t>{0});
  EXPECT_EQ(GetBranch("dev").status.phase, kPhaseReady);
  // A start point in the past has its WAL before it anyway: no checkpoint.
  timelines_.timelines["main"].head_lsn = 42;
  ApplyBranch("past", "{parent: main, lsn: 7, noExpiry: true}");
  ReconcileBranch("past");
  EXPECT_EQ(computes_.checkpoints.size(), 1u);
  // A failed checkpoint does not stop the branch.
  computes_.checkpoint_error = absl::DeadlineExceededError("slow");
  ApplyBranch("dev2", "{parent: main, noExpiry: true}");
  ReconcileBranch("dev2");
  EXPECT_EQ(computes_.checkpoints.size(), 2u);
  EXPECT_EQ(GetBranch("dev2").status.phase, kPhaseReady);
}

TEST_F(BranchReconcilerTest, RetriesWhenThePageserverIsDown) {
  ApplyBranch("main", "{noExpiry: true}");
  timelines_.available = false;
  EXPECT_FALSE(branches_->Reconcile("default", "main").ok());
  timelines_.available = true;
  ReconcileBranch("main");
  EXPECT_EQ(GetBranch("main").status.phase, kPhaseReady);
}

TEST_F(BranchReconcilerTest, AdoptsTheTimelineItCreatedBeforeACrash) {
  ApplyBranch("main", "{noExpiry: true}");
  timelines_.tenants.insert("default");
  ASSERT_TRUE(timelines_.CreateTimeline("default", "main", "", 0, std::nullopt).ok());
  ReconcileBranch("main");
  EXPECT_EQ(GetBranch("main").status.phase, kPhaseReady);
}

TEST_F(BranchReconcilerTest, ExpiredBranchIsDeletedWithItsEndpoints) {
  ApplyBranch("main", "{noExpiry: true}");
  ApplyBranch("pr-1", "{parent: main, ttl: 1h}");
  ApplyEndpoint("pr-1", "{branch: pr-1}");
  ReconcileBranch("main");
  ReconcileBranch("pr-1");
  EXPECT_EQ(*GetBranch("pr-1").status.expire_time,
            GetBranch("pr-1").metadata.creation_timestamp + absl::Hours(1));
  ReconcileEndpoint("pr-1");
  computes_.FinishStarting("default/pr-1");
  ReconcileEndpoint("pr-1");

  Advance(absl::Minutes(59));
  ReconcileBranch("pr-1");
  EXPECT_FALSE(GetBranch("pr-1").metadata.deletion_timestamp);
  Advance(absl::Minutes(2));
  ReconcileBranch("pr-1");
  EXPECT_TRUE(GetBranch("pr-1").metadata.deletion_timestamp);
  ReconcileBranch("pr-1");  // asks for the endpoint's deletion
  EXPECT_TRUE(GetEndpoint("pr-1").metadata.deletion_timestamp);
  ReconcileEndpoint("pr-1");  // stops the compute
  EXPECT_EQ(computes_.Observe("default", "pr-1").state, ComputeState::kStopping);
  computes_.FinishStopping("default/pr-1");
  ReconcileEndpoint("pr-1");
  EXPECT_FALSE(store_.GetEndpoint("default", "pr-1"));
  ReconcileBranch("pr-1");
  EXPECT_FALSE(store_.GetBranch("default", "pr-1"));
  EXPECT_FALSE(timelines_.timelines.count("pr-1"));
}

TEST_F(BranchReconcilerTest, ExpiredBranchWithChildrenIsKeptAndSaysWhy) {
  ApplyBranch("main", "{noExpiry: true}");
  ApplyBranch("feature", "{parent: main, ttl: 1h}");
  ApplyBranch("feature-fix", "{parent: feature, noExpiry: true}");
  ReconcileBranch("main");
  ReconcileBranch("feature");
  ReconcileBranch("feature-fix");
  Advance(absl::Hours(2));
  ReconcileBranch("feature");
  Branch b = GetBranch("feature");
  EXPECT_FALSE(b.metadata.deletion_timestamp);
  EXPECT_EQ(b.status.phase, kPhaseExpired);
  const Condition* c = FindCondition(b.status.conditions, "Expired");
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c->message.find("feature-fix"), std::string::npos);
}

TEST_F(BranchReconcilerTest, ResetStopsComputesBeforeResettingTheTimeline) {
  ApplyBranch("main", "{noExpiry: true}");
  ApplyBranch("dev", "{parent: main, noExpiry: true}");
  ApplyEndpoint("dev", "{branch: dev}");
  ReconcileBranch("main");
  ReconcileBranch("dev");
  ReconcileEndpoint("dev");
  computes_.FinishStarting("default/dev");
  ReconcileEndpoint("dev");
  timelines_.timelines["main"].head_lsn = 100;

  ASSERT_TRUE(store_.RequestReset("default", "dev").ok());
  ReconcileBranch("dev");
  EXPECT_EQ(timelines_.resets, 0) << "reset while a compute runs";
  EXPECT_EQ(GetBranch("dev").status.phase, kPhaseResetting);
  ReconcileEndpoint("dev");
  EXPECT_EQ(computes_.Observe("default", "dev").state, ComputeState::kStopping);
  computes_.FinishStopping("default/dev");
  ReconcileBranch("dev");
  EXPECT_EQ(timelines_.resets, 1);
  Branch dev = GetBranch("dev");
  EXPECT_EQ(dev.status.parent_lsn, 100u);
  EXPECT_EQ(dev.status.observed_reset_generation, dev.spec.reset_generation);
  EXPECT_EQ(dev.status.phase, kPhaseReady);
  // The endpoint keeps its port (connection string) and starts again when wanted.
  int port = GetEndpoint("dev").status.port;
  activity_.RecordWake("default/dev", Now());
  ReconcileEndpoint("dev");
  EXPECT_EQ(computes_.Observe("default", "dev").state, ComputeState::kStarting);
  EXPECT_EQ(GetEndpoint("dev").status.port, port);
}

TEST_F(BranchReconcilerTest, RetentionFollowsTheSpec) {
  ApplyBranch("main", "{noExpiry: true, retention: {historyWindow: 7d}}");
  ReconcileBranch("main");
  EXPECT_EQ(timelines_.retention["main"], absl::Hours(24 * 7));
}

TEST_F(BranchReconcilerTest, MissingParentIsReportedNotRetriedFast) {
  ApplyBranch("orphan", "{parent: nowhere, noExpiry: true}");
  ReconcileResult r = ReconcileBranch("orphan");
  EXPECT_GE(r.requeue_after, absl::Seconds(1));
  EXPECT_NE(
      FindCondition(GetBranch("orphan").status.conditions, "Ready")->message.find("does not exist"),
      std::string::npos);
}

// Kubernetes cannot refuse a start point outside the parent's history before storing it (CEL
// does not see history): the condition says why, and the pass is not retried in a hurry.
TEST_F(BranchReconcilerTest, AStartPointOutsideTheParentsHistoryIsAConditionNotARetryLoop) {
  ApplyBranch("main", "{noExpiry: true}");
  ReconcileBranch("main");
  timelines_.timelines["main"].head_lsn = 10;
  timelines_.timelines["main"].oldest_readable_lsn = 4;
  ApplyBranch("dev", "{parent: main, noExpiry: true, lsn: 50}");
  ReconcileResult r = ReconcileBranch("dev");
  EXPECT_GE(r.requeue_after, absl::Seconds(30));
  Branch dev = GetBranch("dev");
  EXPECT_EQ(dev.status.phase, kPhaseFailed);
  const Condition* ready = FindCondition(dev.status.conditions, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, "StartPointOutOfRange");
  EXPECT_NE(ready->message.find("spec.lsn: LSN 50 is after the head of main (LSN 10)"),
            std::string::npos)
      << ready->message;
  EXPECT_FALSE(timelines_.timelines.count("dev")) << "no timeline was created";

  ApplyBranch("old", "{parent: main, noExpiry: true, lsn: 2}");
  ReconcileBranch("old");
  EXPECT_EQ(FindCondition(GetBranch("old").status.conditions, "Ready")->reason,
            "StartPointOutOfRange");
  // A time in the future is reported too (and becomes valid once it has passed).
  ApplyBranch("soon", "{parent: main, noExpiry: true, timestamp: \"" +
                          Rfc3339(Now() + absl::Hours(1)) + "\"}");
  ReconcileBranch("soon");
  EXPECT_NE(
      FindCondition(GetBranch("soon").status.conditions, "Ready")->message.find("is in the future"),
      std::string::npos);
  // Inside the history: created.
  ApplyBranch("ok", "{parent: main, noExpiry: true, lsn: 7}");
  ReconcileBranch("ok");
  EXPECT_EQ(GetBranch("ok").status.parent_lsn, 7u);
}

TEST_F(BranchReconcilerTest, ARootsDivergedBytesAreItsLogicalSize) {
  ApplyBranch("main", "{noExpiry: true}");
  ReconcileBranch("main");
  // The pageserver counts every version still kept (history too): more than the data.
  timelines_.timelines["main"].logical_size = 1000;
  timelines_.timelines["main"].diverged_bytes = 5000;
  ReconcileBranch("main");
  EXPECT_EQ(GetBranch("main").status.logical_size, 1000);
  EXPECT_EQ(GetBranch("main").status.diverged_bytes, 1000u);
  // A child: what it wrote, never more than what it holds.
  ApplyBranch("dev", "{parent: main, noExpiry: true}");
  ReconcileBranch("dev");
  timelines_.timelines["dev"].logical_size = 1200;
  timelines_.timelines["dev"].diverged_bytes = 300;
  ReconcileBranch("dev");
  EXPECT_EQ(GetBranch("dev").status.diverged_bytes, 300u);
  timelines_.timelines["dev"].diverged_bytes = 9000;
  ReconcileBranch("dev");
  EXPECT_EQ(GetBranch("dev").status.diverged_bytes, 1200u);
}

}  // namespace
}  // namespace pgbranch::control::testing
