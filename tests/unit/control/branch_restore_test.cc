// `branch restore` in the reconcilers (fakes): computes stop first, one rewind keeps the timeline
// id, the kept branch adopts the old state and the children, a crash after the rewind is
// finished on the next pass without a second rewind, refusals leave nothing behind.
#include "operator/control/branch_restore.h"

#include <gtest/gtest.h>

#include "operator/control/conditions.h"
#include "tests/unit/control/reconciler_fixture.h"

namespace pgbranch::control::testing {
namespace {

class BranchRestoreTest : public ReconcilerFixture {
 protected:
  // main (root, with an endpoint) at LSN 10, restore point rp taken there, main moved to 20,
  // another child `other` written to.
  void SetUp() override {
    ApplyBranch("main", "{noExpiry: true}");
    ApplyEndpoint("main", "{branch: main}");
    ReconcileBranch("main");
    ReconcileEndpoint("main");
    computes_.FinishStarting("default/main");
    ReconcileEndpoint("main");
    timelines_.timelines["main"].head_lsn = 10;
    ApplyBranch("rp", "{parent: main, ttl: 7d}");
    ApplyBranch("other", "{parent: main, noExpiry: true}");
    ReconcileBranch("rp");
    ReconcileBranch("other");
    timelines_.timelines["other"].head_lsn = 15;
    timelines_.timelines["main"].head_lsn = 20;
  }
  absl::Status Request(const std::string& to, const std::string& keep = "main-old") {
    cli::LocalStore::RestoreRequest r{"main", to, keep, false};
    return store_.RequestRestore("default", r).status();
  }
  // Stops main's compute as the endpoint reconciler does, then lets the branch finish.
  void Drive() {
    ReconcileBranch("main");
    ReconcileEndpoint("main");
    computes_.FinishStopping("default/main");
    ReconcileBranch("main");
    ReconcileBranch("main-old");
  }
};

TEST_F(BranchRestoreTest, RewindsUnderTheSameTimelineAndKeepsTheOldStateAsABranch) {
  ASSERT_TRUE(Request("rp").ok());
  ReconcileBranch("main-old");
  EXPECT_EQ(GetBranch("main-old").status.phase, kPhasePending) << "waits for the restore";
  EXPECT_EQ(timelines_.timelines.count("main-old"), 0u) << "and makes no timeline of its own";
  ReconcileBranch("main");
  EXPECT_EQ(timelines_.rewinds, 0) << "no rewind while the compute runs";
  Drive();
  EXPECT_EQ(timelines_.rewinds, 1);
  Branch main = GetBranch("main");
  EXPECT_EQ(main.status.timeline_id, "main");
  EXPECT_EQ(main.status.parent_timeline_id, "main-old");
  EXPECT_EQ(main.status.parent_lsn, 10u);
  EXPECT_EQ(main.status.phase, kPhaseReady);
  EXPECT_EQ(main.status.observed_reset_generation, main.spec.reset_generation);
  EXPECT_EQ(FindCondition(main.status.conditions, "RestoreRefused"), nullptr);
  Branch kept = GetBranch("main-old");
  EXPECT_EQ(kept.status.phase, kPhaseReady);
  EXPECT_EQ(kept.status.timeline_id, "main-old");
  EXPECT_EQ(timelines_.timelines["main-old"].head_lsn, 20u) << "the discarded state";
  // The children now hang off the old state, in status as at the pageserver.
  EXPECT_EQ(GetBranch("rp").status.parent_timeline_id, "main-old");
  EXPECT_EQ(GetBranch("other").status.parent_timeline_id, "main-old");
  // Neither the kept branch nor a reset of a replaced child can break main's data.
  EXPECT_TRUE(absl::IsFailedPrecondition(store_.UserDeleteBranch("default", "main-old")));
  EXPECT_TRUE(absl::IsFailedPrecondition(store_.RequestReset("default", "other").status()));
  // A second pass (a crash before the status was written looks the same) rewinds nothing more.
  ReconcileBranch("main");
  EXPECT_EQ(timelines_.rewinds, 1);
}

TEST_F(BranchRestoreTest, AReadOnlyEndpointPinnedBeforeTheRestoreNamesTheKeptBranch) {
  ASSERT_TRUE(Request("rp").ok());
  Drive();
  ASSERT_EQ(GetBranch("main").status.phase, kPhaseReady);
  // main's own history now begins at LSN 10; LSN 5 is in main-old.
  ApplyEndpoint("ro", "{branch: main, type: ReadOnly, lsn: 5}");
  ReconcileEndpoint("ro");
  Endpoint ro = GetEndpoint("ro");
  EXPECT_EQ(ro.status.phase, kPhaseFailed);
  EXPECT_NE(ro.status.message.find("before the oldest readable point"), std::string::npos)
      << ro.status.message;
  EXPECT_NE(ro.status.message.find("what came before is in branch main-old"), std::string::npos)
      << ro.status.message;
  EXPECT_NE(ro.status.message.find("pgbranch branch create NAME --parent main-old"),
            std::string::npos)
      << ro.status.message;
  // The kept branch holds that point: a branch of it there is made.
  ApplyBranch("at5", "{parent: main-old, lsn: 5, noExpiry: true}");
  ReconcileBranch("at5");
  EXPECT_EQ(GetBranch("at5").status.phase, kPhaseReady);
  EXPECT_EQ(timelines_.timelines["at5"].ancestor_lsn, 5u);
}

TEST_F(BranchRestoreTest, ACrashAfterTheRewindIsFinishedWithoutASecondRewind) {
  ASSERT_TRUE(Request("rp").ok());
  ReconcileBranch("main");
  ReconcileEndpoint("main");
  computes_.FinishStopping("default/main");
  // The pageserver rewound, then the controller died before writing main's status.
  ASSERT_TRUE(timelines_.RewindTimeline("default", "main", 10, "main-old").ok());
  ReconcileBranch("main");
  EXPECT_EQ(timelines_.rewinds, 1);
  EXPECT_EQ(GetBranch("main").status.parent_timeline_id, "main-old");
  EXPECT_EQ(GetBranch("main").status.phase, kPhaseReady);
}

TEST_F(BranchRestoreTest, RefusalsChangeNothingAndLeaveNothingBehind) {
  // Checked when asked: not a child of main, missing, a taken name, protected.
  EXPECT_TRUE(absl::IsNotFound(Request("nope")));
  ApplyBranch("side", "{noExpiry: true}");
  EXPECT_TRUE(absl::IsFailedPrecondition(Request("side")));
  EXPECT_TRUE(absl::IsAlreadyExists(Request("rp", "other")));
  EXPECT_FALSE(store_.GetBranch("default", "main-old"));
  // Checked at the pageserver: a restore point that was written to is not a state main had.
  ASSERT_TRUE(Request("other").ok());
  Drive();
  EXPECT_EQ(timelines_.rewinds, 0);
  Branch main = GetBranch("main");
  EXPECT_EQ(main.status.parent_timeline_id, "");
  EXPECT_EQ(main.status.observed_reset_generation, main.spec.reset_generation);
  const Condition* c = FindCondition(main.status.conditions, "RestoreRefused");
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c->message.find("was written to"), std::string::npos) << c->message;
  // The branch that was to keep the state goes away again, without a timeline.
  ReconcileBranch("main-old");
  EXPECT_FALSE(store_.GetBranch("default", "main-old"));
  EXPECT_EQ(timelines_.timelines.count("main-old"), 0u);
  // A later restore works and clears the refusal.
  ASSERT_TRUE(Request("rp").ok());
  Drive();
  EXPECT_EQ(timelines_.rewinds, 1);
  EXPECT_EQ(FindCondition(GetBranch("main").status.conditions, "RestoreRefused"), nullptr);
}

}  // namespace
}  // namespace pgbranch::control::testing
