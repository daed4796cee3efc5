#include "operator/control/promotion_reconciler.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "operator/model/json.h"

// PromotionReconciler over the in-memory API server (FakeKubeApi) and fake database sessions:
// what the branch reconciler and computes would do (Ready branches, Running endpoints) the test
// does by hand between passes.
namespace pgbranch::control {
namespace {

using web::json::value;

// One database per endpoint: a log of what ran and scripted answers.
struct FakeDb {
  std::vector<std::string> log;
  std::map<std::string, absl::StatusOr<cli::SqlResult>> answers;  // by statement prefix
  std::string txid = "1000";
  std::string txid_status = "committed";
  std::function<void(const std::string& sql)> before;  // runs first, for every statement
};

class FakeSession : public cli::SqlSession {
 public:
  explicit FakeSession(FakeDb* db) : db_(db) {}
  absl::StatusOr<cli::SqlResult> Exec(const std::string& sql) override {
    cli::SqlResult r;
    // The applier's catalog reads: no relations, no locks.
    if (absl::StrContains(sql, "pg_catalog.pg_class") ||
        absl::StrContains(sql, "pg_catalog.pg_locks")) {
      return r;
    }
    db_->log.push_back(sql);
    if (db_->before) db_->before(sql);
    if (sql == "SELECT txid_current()::text") {
      r.rows.push_back({db_->txid});
      return r;
    }
    if (absl::StartsWith(sql, "SELECT txid_status(")) {
      r.rows.push_back({db_->txid_status});
      return r;
    }
    for (const auto& [prefix, answer] : db_->answers) {
      if (absl::StartsWith(sql, prefix)) return answer;
    }
    return r;
  }

 private:
  FakeDb* db_;
};

class FakeConnector : public SqlConnector {
 public:
  absl::StatusOr<std::unique_ptr<cli::SqlSession>> Connect(const std::string&,
                                                           const std::string& endpoint) override {
    ++connects[endpoint];
    return std::unique_ptr<cli::SqlSession>(std::make_unique<FakeSession>(&dbs[endpoint]));
  }
  std::map<std::string, FakeDb> dbs;
  std::map<std::string, int> connects;
};

value J(const std::string& s) { return value::parse(s); }

constexpr char kAddColumn[] = "ALTER TABLE t ADD COLUMN c int";
constexpr char kAddColumnSpec[] =
    R"({"branch":"dev","migration":{"sql":"ALTER TABLE t ADD COLUMN c int"}})";

class PromotionReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Put(kube::kBranches, R"({"metadata":{"name":"main","namespace":"ns"},
        "spec":{"noExpiry":true},"status":{"phase":"Ready","timelineID":"t-main"}})");
    Put(kube::kBranches, R"({"metadata":{"name":"dev","namespace":"ns"},
        "spec":{"parent":"main","noExpiry":true},"status":{"phase":"Ready","timelineID":"t-dev"}})");
    Put(kube::kEndpoints, R"({"metadata":{"name":"main","namespace":"ns"},
        "spec":{"branch":"main","type":"ReadWrite"},"status":{"phase":"Running"}})");
    Put(kube::kEndpoints, R"({"metadata":{"name":"dev","namespace":"ns"},
        "spec":{"branch":"dev","type":"ReadWrite"},"status":{"phase":"Running"}})");
  }
  void Put(const kube::Resource& r, const std::string& json) {
    value v = J(json);
    v["apiVersion"] = value::string(kApiVersion);
    ASSERT_TRUE(api_.Put(r, v).ok());
  }
  void Promotion(const std::string& spec) {
    Put(kube::kPromotions,
        R"({"kind":"Promotion","metadata":{"name":"p1","namespace":"ns"},"spec":)" + spec + "}");
  }
  value Get(const kube::Resource& r, const std::string& name) {
    auto v = api_.Get(r, "ns", name);
    return v.ok() ? *v : value::null();
  }
  std::string St(const std::string& key) {
    value p = Get(kube::kPromotions, "p1");
    return p.has_field("status") ? JsonString(p.at("status"), key) : "";
  }
  int64_t StInt(const std::string& key) {
    value p = Get(kube::kPromotions, "p1");
    return p.has_field("status") ? JsonInt(p.at("status"), key) : -1;
  }
  // What the branch and endpoint reconcilers would do: the object's status.phase.
  void SetPhase(const kube::Resource& r, const std::string& name, const std::string& phase) {
    value v = Get(r, name);
    ASSERT_FALSE(v.is_null()) << name;
    v["status"] = value::object();
    v["status"]["phase"] = value::string(phase);
    ASSERT_TRUE(api_.UpdateStatus(r, "ns", v).ok());
  }
  absl::StatusOr<ReconcileResult> Pass() { return reconciler_.Reconcile("ns", "p1"); }
  // Passes until the phase is `phase` or a pass wants to wait (at most 10).
  void RunUntilWait() {
    for (int i = 0; i < 10; ++i) {
      auto r = Pass();
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->requeue_after != absl::ZeroDuration()) return;
    }
  }
  int Count(const std::string& endpoint, const std::string& sql) {
    int n = 0;
    for (const auto& s : sql_.dbs[endpoint].log) n += s == sql ? 1 : 0;
    return n;
  }

  // The steps the other reconcilers and the computes take between passes, each followed by the
  // passes it lets run:
  //  - a Promotion of kAddColumn from dev, passed until it waits for its rehearsal's compute;
  void StartAddColumn() {
    Promotion(kAddColumnSpec);
    RunUntilWait();
  }
  //  - the rehearsal's compute runs: passed until it waits for the restore point;
  void RehearsalRuns() {
    SetPhase(kube::kEndpoints, St("rehearsalBranch"), kPhaseRunning);
    RunUntilWait();
  }
  //  - both, and the restore point Ready: the next pass applies to the parent.
  void UpToApply() {
    StartAddColumn();
    RehearsalRuns();
    SetPhase(kube::kBranches, St("restorePoint"), kPhaseReady);
  }
  // Sets status.<key> as an operator that stopped midway left it.
  void SetStatus(const std::string& key, const value& v) {
    value p = Get(kube::kPromotions, "p1");
    p["status"][key] = v;
    ASSERT_TRUE(api_.UpdateStatus(kube::kPromotions, "ns", p).ok());
  }

  FakeClock clock_;
  kube::FakeKubeApi api_{&clock_};
  FakeConnector sql_;
  std::vector<std::string> events_;
  PromotionReconciler reconciler_{
      &api_, &sql_, &clock_,
      [this](const value&, bool warning, const std::string& reason, const std::string&) {
        events_.push_back((warning ? "Warning " : "Normal ") + reason);
      }};
};

TEST_F(PromotionReconcilerTest, RehearsesTakesRestorePointThenAppliesOnce) {
  Promotion(R"({"branch":"dev","migration":{"sql":"ALTER TABLE t ADD COLUMN c int;"},
                "checks":[{"name":"has-c","sql":"SELECT true"}]})");
  RunUntilWait();
  EXPECT_EQ(St("phase"), kPromotionRehearsing);
  EXPECT_EQ(St("parent"), "main");
  EXPECT_EQ(StInt("statements"), 1);
  const std::string rehearsal = St("rehearsalBranch");
  EXPECT_EQ(rehearsal, "p1-rehearsal-1");
  value rb = Get(kube::kBranches, rehearsal);
  ASSERT_FALSE(rb.is_null());
  EXPECT_EQ(JsonString(rb.at("spec"), "parent"), "main");
  EXPECT_EQ(JsonString(rb.at("metadata").at("ownerReferences")[0], "kind"), "Promotion");
  EXPECT_FALSE(Get(kube::kEndpoints, rehearsal).is_null());
  EXPECT_TRUE(sql_.dbs["main"].log.empty());

  RehearsalRuns();
  EXPECT_EQ(Count(rehearsal, kAddColumn), 1);
  EXPECT_EQ(Count(rehearsal, "SELECT true"), 1);
  EXPECT_EQ(St("phase"), kPromotionApplying);
  EXPECT_TRUE(Get(kube::kBranches, rehearsal).is_null()) << "the rehearsal is deleted";
  const std::string rp = St("restorePoint");
  value rpb = Get(kube::kBranches, rp);
  ASSERT_FALSE(rpb.is_null());
  EXPECT_EQ(JsonString(rpb.at("spec"), "ttl"), "7d");
  EXPECT_EQ(JsonString(rpb.at("metadata").at("labels"), kLabelRestorePointOf), "main");
  EXPECT_FALSE(rpb.at("metadata").has_field("ownerReferences"));
  EXPECT_TRUE(sql_.dbs["main"].log.empty()) << "nothing before the restore point is Ready";

  SetPhase(kube::kBranches, rp, kPhaseReady);
  RunUntilWait();
  EXPECT_EQ(St("phase"), kPromotionSucceeded);
  EXPECT_EQ(StInt("appliedStatements"), 1);
  EXPECT_EQ(St("applyTransaction"), "1000");
  EXPECT_TRUE(absl::StrContains(St("rollback"), "branch restore main --to " + rp));
  EXPECT_EQ(
      sql_.dbs["main"].log,
      (std::vector<std::string>{"BEGIN", kAddColumn, "SELECT txid_current()::text", "COMMIT"}));
  // Terminal: more passes do nothing.
  ASSERT_TRUE(Pass().ok());
  EXPECT_EQ(Count("main", kAddColumn), 1);
  EXPECT_EQ(events_, (std::vector<std::string>{"Normal Rehearsing", "Normal RehearsalPassed",
                                               "Normal RestorePointCreated", "Normal Applying",
                                               "Normal Promoted"}));
}

TEST_F(PromotionReconcilerTest, FailingRehearsalLeavesTheParentUntouched) {
  StartAddColumn();
  const std::string rehearsal = St("rehearsalBranch");
  sql_.dbs[rehearsal].answers[kAddColumn] =
      absl::InvalidArgumentError("column \"c\" of relation \"t\" already exists");
  RehearsalRuns();
  EXPECT_EQ(St("phase"), kPromotionFailed);
  EXPECT_EQ(St("reason"), "RehearsalFailed");
  EXPECT_TRUE(absl::StrContains(St("message"), "already exists")) << St("message");
  EXPECT_TRUE(absl::StrContains(St("message"), "main is untouched")) << St("message");
  EXPECT_EQ(St("failedStatement"), kAddColumn);
  EXPECT_TRUE(sql_.dbs["main"].log.empty());
  EXPECT_TRUE(St("restorePoint").empty());
  EXPECT_TRUE(Get(kube::kBranches, rehearsal).is_null());
  EXPECT_EQ(events_.back(), "Warning RehearsalFailed");
}

TEST_F(PromotionReconcilerTest, FailingCheckStopsBeforeTheParent) {
  Promotion(R"({"branch":"dev","migration":{"sql":"ALTER TABLE t ADD COLUMN c int"},
                "checks":[{"name":"no-nulls","sql":"SELECT false"}]})");
  RunUntilWait();
  sql_.dbs[St("rehearsalBranch")].answers["SELECT false"] = [] {
    cli::SqlResult r;
    r.rows.push_back({std::string("f")});
    return r;
  }();
  RehearsalRuns();
  EXPECT_EQ(St("phase"), kPromotionFailed);
  EXPECT_TRUE(absl::StrContains(St("message"), "check \"no-nulls\" failed")) << St("message");
  EXPECT_TRUE(sql_.dbs["main"].log.empty());
}

TEST_F(PromotionReconcilerTest, RefusesProtectedParentWithoutAllowProtected) {
  value main = Get(kube::kBranches, "main");
  main["spec"]["protected"] = value::boolean(true);
  ASSERT_TRUE(api_.Update(kube::kBranches, "ns", main).ok());
  StartAddColumn();
  EXPECT_EQ(St("phase"), kPromotionFailed);
  EXPECT_EQ(St("reason"), "ParentProtected");
  EXPECT_TRUE(absl::StrContains(St("message"), "allowProtected")) << St("message");
  EXPECT_TRUE(Get(kube::kBranches, "p1-rehearsal-1").is_null());
}

TEST_F(PromotionReconcilerTest, RefusesRootBranch) {
  Promotion(R"({"branch":"main","migration":{"sql":"SELECT 1"}})");
  RunUntilWait();
  EXPECT_EQ(St("phase"), kPromotionFailed);
  EXPECT_EQ(St("reason"), "NoParent");
}

TEST_F(PromotionReconcilerTest, PromotesCapturedDdlOfTheBranch) {
  cli::SqlResult captured;
  captured.rows.push_back({std::string("1"), std::string("ALTER TABLE"),
                           std::string("ALTER TABLE t ADD COLUMN c int;")});
  sql_.dbs["dev"].answers["SELECT id, command_tag, query FROM pgbranch.ddl_log"] = captured;
  Promotion(R"({"branch":"dev"})");
  RunUntilWait();
  EXPECT_EQ(StInt("statements"), 1);
  EXPECT_TRUE(absl::StrContains(sql_.dbs["dev"].log[0], "WHERE timeline = 't-dev'"));
  RehearsalRuns();
  SetPhase(kube::kBranches, St("restorePoint"), kPhaseReady);
  RunUntilWait();
  EXPECT_EQ(St("phase"), kPromotionSucceeded);
  EXPECT_EQ(Count("main", kAddColumn), 1);
}

TEST_F(PromotionReconcilerTest, MigrationFromConfigMapThatChangedMidwayIsNotApplied) {
  Put(kube::kConfigMaps, R"({"apiVersion":"v1","kind":"ConfigMap",
      "metadata":{"name":"m","namespace":"ns"},"data":{"up.sql":"ALTER TABLE t ADD COLUMN c int;"}})");
  Promotion(R"({"branch":"dev","migration":{"configMapRef":{"name":"m","key":"up.sql"}}})");
  RunUntilWait();
  EXPECT_EQ(St("phase"), kPromotionRehearsing);
  value cm = Get(kube::kConfigMaps, "m");
  cm["data"]["up.sql"] = value::string("DROP TABLE t;");
  ASSERT_TRUE(api_.Update(kube::kConfigMaps, "ns", cm).ok());
  RehearsalRuns();
  EXPECT_EQ(St("phase"), kPromotionFailed);
  EXPECT_EQ(St("reason"), "MigrationChanged");
  EXPECT_TRUE(sql_.dbs["main"].log.empty());
}

// The operator stopped after the transaction id was recorded: txid_status decides, and a
// committed migration is never applied again.
TEST_F(PromotionReconcilerTest, RestartAfterCommitDoesNotApplyAgain) {
  UpToApply();
  // Where a killed operator left it: Applying, with the id written before COMMIT.
  SetStatus("applyTransaction", value::string("777"));
  sql_.dbs["main"].txid_status = "committed";
  RunUntilWait();
  EXPECT_EQ(St("phase"), kPromotionSucceeded);
  EXPECT_EQ(sql_.dbs["main"].log, std::vector<std::string>{"SELECT txid_status(777)"});
}

// The restore point deleted after the transaction id was recorded is not made again: it would
// hold the migrated parent.
TEST_F(PromotionReconcilerTest, RestorePointIsNotRetakenAfterCommit) {
  StartAddColumn();
  RehearsalRuns();
  const std::string rp = St("restorePoint");
  SetStatus("applyTransaction", value::string("777"));
  ASSERT_TRUE(api_.Delete(kube::kBranches, "ns", rp).ok());
  RunUntilWait();
  EXPECT_EQ(St("phase"), kPromotionSucceeded);
  EXPECT_TRUE(Get(kube::kBranches, rp).is_null());
  EXPECT_EQ(sql_.dbs["main"].log, std::vector<std::string>{"SELECT txid_status(777)"});
}

TEST_F(PromotionReconcilerTest, RestartAfterAbortedTransactionAppliesOnce) {
  UpToApply();
  SetStatus("applyTransaction", value::string("777"));
  sql_.dbs["main"].txid_status = "aborted";
  RunUntilWait();
  EXPECT_EQ(St("phase"), kPromotionSucceeded);
  EXPECT_EQ(Count("main", kAddColumn), 1);
  EXPECT_EQ(St("applyTransaction"), "1000");
}

TEST_F(PromotionReconcilerTest, StatusConflictBeforeCommitRollsBack) {
  UpToApply();
  // The "applying" message write passes; the transaction id write is refused.
  sql_.dbs["main"].before = [this](const std::string& sql) {
    if (sql == "SELECT txid_current()::text") {
      api_.FailNext(kube::FakeKubeApi::Verb::kUpdateStatus, 1, absl::AbortedError("conflict"));
    }
  };
  auto r = Pass();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(sql_.dbs["main"].log.back(), "ROLLBACK");
  EXPECT_EQ(St("phase"), kPromotionApplying);
  sql_.dbs["main"].before = nullptr;
  RunUntilWait();
  EXPECT_EQ(St("phase"), kPromotionSucceeded);
  EXPECT_EQ(Count("main", "COMMIT"), 1);
}

TEST_F(PromotionReconcilerTest, InterruptedRehearsalStartsOverOnAFreshCopy) {
  StartAddColumn();
  SetStatus("rehearsalStarted", value::boolean(true));  // killed mid-rehearsal
  RunUntilWait();
  EXPECT_EQ(St("rehearsalBranch"), "p1-rehearsal-2");
  EXPECT_EQ(StInt("rehearsalAttempt"), 2);
  EXPECT_TRUE(Get(kube::kBranches, "p1-rehearsal-1").is_null());
  EXPECT_FALSE(Get(kube::kBranches, "p1-rehearsal-2").is_null());
}

TEST_F(PromotionReconcilerTest, NamesFitKubernetesLimits) {
  const std::string long_name(48, 'a');
  EXPECT_LE(PromotionReconciler::RehearsalName(long_name, 3).size(), 63u);
  std::string rp = PromotionReconciler::RestorePointName(std::string(63, 'm'), long_name);
  EXPECT_LE(rp.size(), 63u);
  EXPECT_NE(rp, PromotionReconciler::RestorePointName(std::string(63, 'm'), long_name + "b"));
  EXPECT_EQ(PromotionReconciler::RestorePointName("main", "p1"),
            PromotionReconciler::RestorePointName("main", "p1"));
}

}  // namespace
}  // namespace pgbranch::control
