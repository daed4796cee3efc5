#include "cli/migration_applier.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "absl/strings/match.h"

namespace pgbranch::cli {
namespace {

// A session that answers the applier's catalog queries from `relations` and `locks`, and runs
// the migration's statements through `effects` (absent: a statement that does nothing).
class FakeSession : public SqlSession {
 public:
  absl::StatusOr<SqlResult> Exec(const std::string& sql) override {
    SqlResult r;
    if (absl::StrContains(sql, "FROM pg_catalog.pg_class")) {
      for (const auto& [oid, rel] : relations) r.rows.push_back({oid, rel.second, rel.first});
      return r;
    }
    if (absl::StrContains(sql, "FROM pg_catalog.pg_locks")) {
      for (const auto& [oid, mode] : locks) r.rows.push_back({oid, mode});
      return r;
    }
    log.push_back(sql);
    if (sql == "ROLLBACK") locks.clear();
    if (sql == "COMMIT") locks.clear();
    auto e = effects.find(sql);
    if (e != effects.end()) return e->second(this);
    return r;
  }

  // oid -> (name, relfilenode)
  std::map<std::string, std::pair<std::string, std::string>> relations;
  std::vector<std::pair<std::string, std::string>> locks;  // (oid, mode)
  std::map<std::string, std::function<absl::StatusOr<SqlResult>(FakeSession*)>> effects;
  std::vector<std::string> log;
};

MigrationPlan Plan(std::vector<MigrationStatement> statements) {
  MigrationPlan p;
  p.statements = std::move(statements);
  return p;
}

class MigrationApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s_.relations["10"] = {"shop.customers", "100"};
    s_.relations["11"] = {"shop.customers_pkey", "101"};
  }
  ApplyReport Apply(const MigrationPlan& p) {
    absl::Time t = absl::UnixEpoch();
    // Every reading of the clock advances it by 1 ms.
    return MigrationApplier(&s_, [t]() mutable { return t += absl::Milliseconds(1); }).Apply(p);
  }
  FakeSession s_;
};

TEST_F(MigrationApplierTest, TransactionFirstThenNonTransactionalOnes) {
  ApplyReport r = Apply(Plan({{"CREATE INDEX CONCURRENTLY i ON shop.customers (a)", false},
                              {"ALTER TABLE shop.customers ADD a int", true}}));
  EXPECT_TRUE(r.committed);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.failed, -1);
  EXPECT_EQ(s_.log,
            (std::vector<std::string>{"BEGIN", "ALTER TABLE shop.customers ADD a int", "COMMIT",
                                      "CREATE INDEX CONCURRENTLY i ON shop.customers (a)"}));
  ASSERT_EQ(r.statements.size(), 2u);
  EXPECT_TRUE(r.statements[0].transactional);
  EXPECT_FALSE(r.statements[1].transactional);
  EXPECT_TRUE(r.statements[0].applied && r.statements[1].applied);
  EXPECT_EQ(r.statements[0].duration, absl::Milliseconds(1));
}

TEST_F(MigrationApplierTest, ReportsLocksOnExistingRelationsAndRewrites) {
  s_.effects["ALTER TABLE shop.customers ALTER a TYPE bigint"] = [](FakeSession* s) {
    s->locks.push_back({"10", "ShareLock"});
    s->locks.push_back({"10", "AccessExclusiveLock"});
    s->locks.push_back({"99", "AccessExclusiveLock"});  // a relation it created: not reported
    s->relations["10"].second = "200";
    s->relations["11"].second = "201";
    s->relations["99"] = {"shop.new_table", "300"};
    return SqlResult{};
  };
  s_.effects["CREATE INDEX i ON shop.customers (a)"] = [](FakeSession* s) {
    s->locks.push_back({"11", "ShareLock"});
    return SqlResult{};
  };
  ApplyReport r = Apply(Plan({{"ALTER TABLE shop.customers ALTER a TYPE bigint", true},
                              {"CREATE INDEX i ON shop.customers (a)", true}}));
  ASSERT_TRUE(r.complete) << r.error;
  const StatementReport& alter = r.statements[0];
  ASSERT_EQ(alter.locks.size(), 1u);
  EXPECT_EQ(alter.locks[0].relation, "shop.customers");
  EXPECT_EQ(alter.locks[0].mode, "AccessExclusiveLock");
  EXPECT_TRUE(alter.TakesAccessExclusive());
  EXPECT_EQ(alter.rewritten, (std::vector<std::string>{"shop.customers", "shop.customers_pkey"}));
  // Locks held since the earlier statement are not the next one's.
  const StatementReport& index = r.statements[1];
  ASSERT_EQ(index.locks.size(), 1u);
  EXPECT_EQ(index.locks[0].relation, "shop.customers_pkey");
  EXPECT_FALSE(index.TakesAccessExclusive());
  EXPECT_TRUE(index.rewritten.empty());
}

TEST_F(MigrationApplierTest, FailureInTheTransactionRollsEverythingBack) {
  s_.effects["ALTER TABLE shop.nope ADD b int"] = [](FakeSession*) -> absl::StatusOr<SqlResult> {
    return absl::FailedPreconditionError("relation \"shop.nope\" does not exist");
  };
  ApplyReport r = Apply(Plan({{"ALTER TABLE shop.customers ADD a int", true},
                              {"ALTER TABLE shop.nope ADD b int", true},
                              {"CREATE INDEX CONCURRENTLY i ON shop.customers (a)", false}}));
  EXPECT_FALSE(r.committed);
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.error, "relation \"shop.nope\" does not exist");
  EXPECT_EQ(s_.log.back(), "ROLLBACK");
  ASSERT_EQ(r.statements.size(), 2u);
  EXPECT_FALSE(r.statements[0].applied) << "rolled back with the transaction";
  EXPECT_EQ(r.statements[1].error, r.error);
  for (const auto& sql : s_.log) EXPECT_FALSE(absl::StrContains(sql, "CONCURRENTLY")) << sql;
}

TEST_F(MigrationApplierTest, FailedCommitIsAFailure) {
  s_.effects["COMMIT"] = [](FakeSession*) -> absl::StatusOr<SqlResult> {
    return absl::FailedPreconditionError("deferred constraint violated");
  };
  ApplyReport r = Apply(Plan({{"ALTER TABLE shop.customers ADD a int", true}}));
  EXPECT_FALSE(r.committed);
  EXPECT_NE(r.error.find("COMMIT: deferred"), std::string::npos) << r.error;
  EXPECT_FALSE(r.statements[0].applied);
}

TEST_F(MigrationApplierTest, FailedStatementAfterTheTransactionKeepsTheCommit) {
  s_.effects["CREATE INDEX CONCURRENTLY i ON shop.customers (a)"] =
      [](FakeSession*) -> absl::StatusOr<SqlResult> {
    return absl::FailedPreconditionError("could not create unique index");
  };
  ApplyReport r = Apply(Plan({{"ALTER TABLE shop.customers ADD a int", true},
                              {"CREATE INDEX CONCURRENTLY i ON shop.customers (a)", false},
                              {"VACUUM shop.customers", false}}));
  EXPECT_TRUE(r.committed);
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(r.failed, 1);
  ASSERT_EQ(r.statements.size(), 2u) << "the statement after the failed one did not run";
  EXPECT_TRUE(r.statements[0].applied);
  EXPECT_FALSE(r.statements[1].applied);
}

TEST_F(MigrationApplierTest, OnlyNonTransactionalStatementsNeedNoTransaction) {
  ApplyReport r = Apply(Plan({{"VACUUM shop.customers", false}}));
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(s_.log, std::vector<std::string>{"VACUUM shop.customers"});
}

TEST_F(MigrationApplierTest, BeforeCommitSeesTheTransactionIdAndCanRollItBack) {
  s_.effects["SELECT txid_current()::text"] = [](FakeSession*) -> absl::StatusOr<SqlResult> {
    SqlResult r;
    r.rows.push_back({std::string("742")});
    return r;
  };
  std::string seen;
  MigrationApplier a(&s_);
  a.SetBeforeCommit([&](const std::string& txid) {
    seen = txid;
    return absl::AbortedError("status write conflicted");
  });
  ApplyReport r = a.Apply(Plan({{"ALTER TABLE shop.customers ADD a int", true}}));
  EXPECT_EQ(seen, "742");
  EXPECT_FALSE(r.committed);
  EXPECT_EQ(r.error, "before COMMIT: status write conflicted");
  EXPECT_EQ(s_.log, (std::vector<std::string>{"BEGIN", "ALTER TABLE shop.customers ADD a int",
                                              "SELECT txid_current()::text", "ROLLBACK"}));

  s_.log.clear();
  a.SetBeforeCommit([&](const std::string&) { return absl::OkStatus(); });
  r = a.Apply(Plan({{"ALTER TABLE shop.customers ADD a int", true}}));
  EXPECT_TRUE(r.committed && r.complete);
  EXPECT_EQ(s_.log.back(), "COMMIT");
}

}  // namespace
}  // namespace pgbranch::cli
