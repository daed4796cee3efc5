#include "cli/sql_script.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/migration_plan.h"

namespace pgbranch::cli {
namespace {

using ::testing::ElementsAre;

TEST(SqlScriptTest, SplitsOnSemicolonsOutsideQuotesAndComments) {
  auto s = SplitSqlStatements(
      "CREATE TABLE t (a text DEFAULT 'x;y');\n"
      "-- a comment; with a semicolon\n"
      "INSERT INTO \"odd;name\" VALUES (E'it\\'s; fine');\n"
      "/* outer /* nested; */ still; */ SELECT 1;;\n"
      "DO $$ BEGIN PERFORM 1; END $$;\n"
      "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $fn$ SELECT 1; $fn$\n");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 5u);
  EXPECT_EQ((*s)[0], "CREATE TABLE t (a text DEFAULT 'x;y')");
  EXPECT_EQ((*s)[1],
            "-- a comment; with a semicolon\nINSERT INTO \"odd;name\" VALUES (E'it\\'s; fine')");
  EXPECT_EQ((*s)[2], "/* outer /* nested; */ still; */ SELECT 1");
  EXPECT_EQ((*s)[3], "DO $$ BEGIN PERFORM 1; END $$");
  EXPECT_EQ((*s)[4], "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $fn$ SELECT 1; $fn$");
}

// SQL-standard function bodies hold statements of their own: cut as psql cuts them.
TEST(SqlScriptTest, BeginAtomicBodiesAreOneStatement) {
  auto s = SplitSqlStatements(
      "CREATE FUNCTION tier(total numeric) RETURNS text LANGUAGE sql\n"
      "BEGIN ATOMIC\n"
      "  SELECT CASE WHEN total > 1000 THEN 'gold' ELSE 'basic' END;\n"
      "END;\n"
      "create procedure p() begin atomic insert into t values (1); insert into t values (2); "
      "end;\n"
      "BEGIN;\n"
      "SELECT CASE WHEN true THEN 1 END;\n"
      "COMMIT;\n"
      "END;\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, ElementsAre("CREATE FUNCTION tier(total numeric) RETURNS text LANGUAGE sql\n"
                              "BEGIN ATOMIC\n"
                              "  SELECT CASE WHEN total > 1000 THEN 'gold' ELSE 'basic' END;\n"
                              "END",
                              "create procedure p() begin atomic insert into t values (1); "
                              "insert into t values (2); end",
                              "BEGIN", "SELECT CASE WHEN true THEN 1 END", "COMMIT", "END"));
  // Outside a routine, and words that only contain BEGIN or END, open and close nothing.
  s = SplitSqlStatements(
      "ALTER TABLE t ADD COLUMN begin int; SELECT begins, ends_at, \"begin\" FROM t; "
      "CREATE OR REPLACE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; "
      "SELECT 2");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(
      *s,
      ElementsAre("ALTER TABLE t ADD COLUMN begin int", "SELECT begins, ends_at, \"begin\" FROM t",
                  "CREATE OR REPLACE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC "
                  "SELECT 1; END",
                  "SELECT 2"));
}

TEST(SqlScriptTest, DoubledQuotesAndDollarsInsideWords) {
  auto s = SplitSqlStatements("SELECT 'it''s;' AS a$b; SELECT $1;");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, ElementsAre("SELECT 'it''s;' AS a$b", "SELECT $1"));
}

TEST(SqlScriptTest, CommentOnlyInputHasNoStatements) {
  auto s = SplitSqlStatements("-- nothing\n/* at all */\n ; \n");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->empty());
}

TEST(SqlScriptTest, RefusesUnterminatedQuotesAndMetaCommands) {
  auto q = SplitSqlStatements("SELECT 1;\nSELECT 'open;\n");
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("line 2"), std::string::npos) << q.status();
  EXPECT_FALSE(SplitSqlStatements("DO $x$ BEGIN END $y$;").ok());
  EXPECT_FALSE(SplitSqlStatements("/* never closed").ok());
  auto m = SplitSqlStatements("SELECT 1;\n\\i other.sql\n");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("meta-command"), std::string::npos) << m.status();
}

TEST(SqlScriptTest, TellsNonTransactionalStatements) {
  EXPECT_TRUE(IsNonTransactional("CREATE INDEX CONCURRENTLY i ON t (a)"));
  EXPECT_TRUE(IsNonTransactional("create unique index concurrently i on t (a)"));
  EXPECT_TRUE(IsNonTransactional("-- why\nDROP INDEX CONCURRENTLY i"));
  EXPECT_TRUE(IsNonTransactional("REINDEX INDEX CONCURRENTLY i"));
  EXPECT_TRUE(IsNonTransactional("VACUUM ANALYZE t"));
  EXPECT_TRUE(IsNonTransactional("CREATE DATABASE x"));
  EXPECT_TRUE(IsNonTransactional("ALTER SYSTEM SET work_mem = '8MB'"));
  EXPECT_FALSE(IsNonTransactional("CREATE INDEX i ON t (a)"));
  EXPECT_FALSE(IsNonTransactional("ALTER TABLE t ADD COLUMN concurrently int"));
  EXPECT_FALSE(IsNonTransactional("UPDATE t SET a = 'CREATE INDEX CONCURRENTLY'"));
}

TEST(SqlScriptTest, TellsTransactionControl) {
  EXPECT_TRUE(IsTransactionControl("BEGIN"));
  EXPECT_TRUE(IsTransactionControl("begin isolation level serializable"));
  EXPECT_TRUE(IsTransactionControl("START TRANSACTION"));
  EXPECT_TRUE(IsTransactionControl("COMMIT"));
  EXPECT_TRUE(IsTransactionControl("END"));
  EXPECT_FALSE(IsTransactionControl("START x"));
  EXPECT_FALSE(IsTransactionControl("DO $$ BEGIN END $$"));
}

TEST(MigrationPlanTest, ScriptKeepsOrderAndLeavesOutItsOwnTransaction) {
  auto p = PlanFromScript("m.sql",
                          "BEGIN;\nALTER TABLE t ADD COLUMN c int;\nUPDATE t SET c = 1;\n"
                          "CREATE INDEX CONCURRENTLY i ON t (c);\nCOMMIT;\n");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->statements.size(), 3u);
  EXPECT_TRUE(p->statements[0].transactional);
  EXPECT_TRUE(p->statements[1].transactional);
  EXPECT_FALSE(p->statements[2].transactional);
  EXPECT_EQ(p->TransactionalCount(), 2u);
  EXPECT_THAT(p->ignored, ElementsAre("BEGIN", "COMMIT"));
  EXPECT_EQ(p->source, "file m.sql");
}

TEST(MigrationPlanTest, CapturedQueryStringsAreSplit) {
  auto p =
      PlanFromCapture("dev", {{1, "ALTER TABLE", "ALTER TABLE t ADD c int; UPDATE t SET c = 1"},
                              {2, "CREATE INDEX", "CREATE INDEX CONCURRENTLY i ON t (c)"}});
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->statements.size(), 3u);
  EXPECT_EQ(p->statements[1].sql, "UPDATE t SET c = 1");
  EXPECT_FALSE(p->statements[2].transactional);
  auto bad = PlanFromCapture("dev", {{7, "CREATE TABLE", "CREATE TABLE 'x"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("captured statement 7"), std::string::npos);
}

}  // namespace
}  // namespace pgbranch::cli
