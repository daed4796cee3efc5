// `pgbranch branch promote` end to end on real computes: the developer workflow (a JSONB column
// and its GIN index captured on dev-alex and promoted to development), a failing migration and a
// broken user check caught in the rehearsal with the parent untouched, a non-transactional
// statement applied after the transaction, conflicts and a protected parent refused, promote then
// `branch restore` (and its refusals). One local
// instance; `main` (protected) holds the ecommerce sample, `development` is its child.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/local/local_mode_fixture.h"

namespace pgbranch::testing {
namespace {

class LocalPromoteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    local_ = new LocalMode();
    absl::Status s = local_->Up();
    ASSERT_TRUE(s.ok()) << s;
    CommandResult r = local_->Cli({"branch", "create", "main", "--protected"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    CommandResult load = local_->Psql(local_->Connstr("main"), SampleSql());
    ASSERT_EQ(load.exit_code, 0) << load.Describe();
    r = local_->Cli({"branch", "create", "development", "--parent", "main"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }
  static void TearDownTestSuite() {
    delete local_;
    local_ = nullptr;
  }
  static void CreateBranch(const std::string& name, const std::string& parent) {
    CommandResult r = local_->Cli({"branch", "create", name, "--parent", parent});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }
  static std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = local_->state_dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  // The user's schema and data, as pg_dump prints them.
  static std::string Dump(const std::string& uri) {
    CommandResult r = RunCommand(
        {"/usr/lib/postgresql/15/bin/pg_dump", "--no-owner", "--exclude-schema=pgbranch", uri}, "",
        120);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    // pg_dump's \restrict key differs on every run.
    std::istringstream lines(r.out);
    std::string line, out;
    while (std::getline(lines, line)) {
      if (line.rfind("\\restrict", 0) != 0 && line.rfind("\\unrestrict", 0) != 0)
        out += line + "\n";
    }
    return out;
  }
  static std::string Branches() {
    web::json::value list = local_->CliJson({"branch", "list"});
    std::string names;
    for (const auto& b : list.at("items").as_array()) {
      absl::StrAppend(&names, b.at("metadata").at("name").as_string(), " ");
    }
    return names;
  }
  static bool HasColumn(const std::string& uri, const std::string& table,
                        const std::string& column) {
    return local_->Query(uri, absl::StrCat("SELECT count(*) FROM information_schema.columns "
                                           "WHERE table_schema = 'ecommerce' AND table_name = '",
                                           table, "' AND column_name = '", column, "'")) == "1";
  }

  static LocalMode* local_;
};

LocalMode* LocalPromoteTest::local_ = nullptr;

TEST_F(LocalPromoteTest, CaptureRecordsEachClientStatementOnceOnItsOwnBranch) {
  CreateBranch("capture", "development");
  const std::string uri = local_->Connstr("capture");
  const std::string own =
      "SELECT string_agg(command_tag || ': ' || query, ' | ' ORDER BY id) FROM pgbranch.ddl_log "
      "WHERE timeline = 'capture'";
  EXPECT_EQ(local_->Query(uri, own), "") << "nothing of the parent's history is the branch's";
  EXPECT_NE(local_->Query(uri, "SELECT count(*) FROM pgbranch.ddl_log"), "0")
      << "the parent's rows come with its data";
  // A multi-statement string and a DO block: once each, as sent; a rolled-back statement and
  // DML: not at all.
  local_->Query(uri, "CREATE TABLE a (i int); CREATE INDEX a_i ON a (i); INSERT INTO a VALUES (1)");
  local_->Query(uri,
                "DO $$ BEGIN EXECUTE 'CREATE TABLE b (i int)'; EXECUTE 'DROP TABLE b'; END $$");
  EXPECT_NE(local_->Psql(uri, "BEGIN; CREATE TABLE c (i int); SELECT 1/0; COMMIT").exit_code, 0);
  local_->Query(uri, "UPDATE a SET i = 2");
  EXPECT_EQ(local_->Query(uri, own),
            "CREATE TABLE: CREATE TABLE a (i int); CREATE INDEX a_i ON a (i); INSERT INTO a "
            "VALUES (1) | CREATE TABLE: DO $$ BEGIN EXECUTE 'CREATE TABLE b (i int)'; EXECUTE "
            "'DROP TABLE b'; END $$");
  // The login role reads the log but cannot change it or switch the capture off.
  EXPECT_NE(local_->Psql(uri, "DELETE FROM pgbranch.ddl_log").exit_code, 0);
  EXPECT_NE(local_->Psql(uri, "ALTER EVENT TRIGGER pgbranch_capture_ddl DISABLE").exit_code, 0);
  // A child starts with no statements of its own; a reset drops the branch's.
  CreateBranch("capture-child", "capture");
  EXPECT_EQ(local_->Query(local_->Connstr("capture-child"),
                          "SELECT count(*) FROM pgbranch.ddl_log WHERE timeline = "
                          "'capture-child'"),
            "0");
  EXPECT_EQ(local_->Cli({"branch", "delete", "capture-child"}).exit_code, 0);
  ASSERT_EQ(local_->Cli({"branch", "reset", "capture"}).exit_code, 0);
  EXPECT_EQ(local_->Query(uri, own), "");
  // Its own objects are not the user's schema.
  CommandResult diff = local_->Cli({"branch", "schema-diff", "capture", "--two-way"});
  EXPECT_TRUE(absl::StrContains(diff.out, "no schema differences")) << diff.Describe();
  EXPECT_EQ(local_->Cli({"branch", "delete", "capture"}).exit_code, 0);
}

TEST_F(LocalPromoteTest, DeveloperPromotesAJsonbColumnAndItsIndexes) {
  CreateBranch("dev-alex", "development");
  const std::string dev = local_->Connstr("dev-alex");
  const std::string parent = local_->Connstr("development");
  local_->Query(dev, "ALTER TABLE ecommerce.customers ADD COLUMN preferences JSONB");
  local_->Query(dev,
                "CREATE INDEX customers_preferences_idx ON ecommerce.customers "
                "USING gin (preferences)");
  local_->Query(dev,
                "CREATE INDEX CONCURRENTLY orders_ordered_at_idx ON ecommerce.orders "
                "(ordered_at)");
  // A statement that failed is not captured (its transaction rolled back).
  EXPECT_NE(local_->Psql(dev, "ALTER TABLE ecommerce.nope ADD COLUMN x int").exit_code, 0);

  // Dry run: rehearsed on a throwaway copy; the parent stays as it is.
  const std::string before = Dump(parent);
  const std::string branches_before = Branches();
  web::json::value dry = local_->CliJson({"branch", "promote", "dev-alex", "--dry-run"});
  ASSERT_TRUE(dry.is_object());
  EXPECT_EQ(dry.at("result").as_string(), "Rehearsed") << dry.serialize();
  web::json::value rehearsal = dry.at("rehearsal");
  EXPECT_TRUE(rehearsal.at("deleted").as_bool());
  web::json::value statements = rehearsal.at("apply").at("statements");
  ASSERT_EQ(statements.size(), 3u) << dry.serialize();
  EXPECT_EQ(statements[0].at("sql").as_string(),
            "ALTER TABLE ecommerce.customers ADD COLUMN preferences JSONB");
  EXPECT_TRUE(statements[0].at("accessExclusive").as_bool()) << "ADD COLUMN locks the table";
  EXPECT_EQ(statements[0].at("rewritten").size(), 0u) << "a nullable column rewrites nothing";
  EXPECT_FALSE(statements[1].at("accessExclusive").as_bool()) << "CREATE INDEX takes SHARE";
  EXPECT_FALSE(statements[2].at("transactional").as_bool());
  EXPECT_EQ(rehearsal.at("resultAgainstBranch").size(), 0u)
      << "the rehearsal's result has the branch's schema: " << rehearsal.serialize();
  EXPECT_EQ(Dump(parent), before) << "a dry run does not touch the parent";
  EXPECT_EQ(Branches(), branches_before) << "the rehearsal branch is deleted";

  // The readable form names the locks and the statement run after the transaction.
  CommandResult text = local_->Cli({"branch", "promote", "dev-alex", "--dry-run"});
  ASSERT_EQ(text.exit_code, 0) << text.Describe();
  EXPECT_TRUE(absl::StrContains(text.out,
                                "ACCESS EXCLUSIVE lock (blocks reads and writes) on "
                                "ecommerce.customers"))
      << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, "after the transaction, one by one:")) << text.out;

  // Promote: restore point, then the parent; same connection string.
  web::json::value done = local_->CliJson({"branch", "promote", "dev-alex"});
  ASSERT_TRUE(done.is_object());
  EXPECT_EQ(done.at("result").as_string(), "Promoted") << done.serialize();
  web::json::value applied = done.at("applied");
  EXPECT_TRUE(applied.at("committed").as_bool());
  ASSERT_EQ(applied.at("statements").size(), 3u);
  EXPECT_FALSE(applied.at("statements")[2].at("transactional").as_bool());
  EXPECT_TRUE(applied.at("statements")[2].at("applied").as_bool());
  EXPECT_EQ(local_->Connstr("development"), parent);
  EXPECT_TRUE(HasColumn(parent, "customers", "preferences"));
  EXPECT_EQ(local_->Query(parent,
                          "SELECT string_agg(indexname || ':' || i.indisvalid, ',' ORDER BY "
                          "indexname) FROM pg_indexes JOIN pg_index i ON i.indexrelid = "
                          "(schemaname || '.' || indexname)::regclass WHERE indexname IN "
                          "('customers_preferences_idx', 'orders_ordered_at_idx')"),
            "customers_preferences_idx:true,orders_ordered_at_idx:true");
  EXPECT_EQ(local_->Query(parent, "SELECT count(*) FROM ecommerce.customers"), "100")
      << "data stays where it is";

  // The restore point holds the parent as it was, and expires.
  const std::string restore_point = done.at("restorePoint").as_string();
  EXPECT_TRUE(absl::StartsWith(restore_point, "development-before-promote-")) << restore_point;
  web::json::value rp = local_->CliJson({"branch", "get", restore_point});
  EXPECT_EQ(rp.at("spec").at("parent").as_string(), "development");
  EXPECT_EQ(rp.at("spec").at("ttl").as_string(), "7d");
  EXPECT_EQ(rp.at("metadata").at("labels").at("pgbranch.io/restore-point-of").as_string(),
            "development");
  ASSERT_EQ(local_->Cli({"endpoint", "create", restore_point, "--branch", restore_point}).exit_code,
            0);
  EXPECT_EQ(Dump(local_->Connstr(restore_point)), before)
      << "the restore point is the parent before the promotion";
  EXPECT_EQ(local_->Cli({"branch", "delete", restore_point}).exit_code, 0);

  // The promoted statements are now the parent's own: a child of the parent starts with none.
  CreateBranch("dev-after", "development");
  CommandResult nothing = local_->Cli({"branch", "promote", "dev-after", "--dry-run"});
  EXPECT_NE(nothing.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(nothing.err, "nothing to promote")) << nothing.Describe();
  EXPECT_EQ(local_->Cli({"branch", "delete", "dev-after"}).exit_code, 0);
  EXPECT_EQ(local_->Cli({"branch", "delete", "dev-alex"}).exit_code, 0);
}

TEST_F(LocalPromoteTest, FailingMigrationIsCaughtInTheRehearsal) {
  CreateBranch("dev-broken", "development");
  const std::string parent = local_->Connstr("development");
  // Valid on the branch (whose data has no duplicate), broken on the parent's data.
  local_->Query(parent,
                "INSERT INTO ecommerce.products (name, price_cents) VALUES "
                "('Duplicate', 100), ('Duplicate', 200)");
  const std::string dev = local_->Connstr("dev-broken");
  local_->Query(dev, "ALTER TABLE ecommerce.products ADD COLUMN note text");
  local_->Query(dev,
                "ALTER TABLE ecommerce.products ADD CONSTRAINT products_name_key "
                "UNIQUE (name)");
  const std::string before = Dump(parent);
  const std::string branches_before = Branches();
  CommandResult r = local_->Cli({"branch", "promote", "dev-broken"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err,
                                "the rehearsal failed at `ALTER TABLE ecommerce.products "
                                "ADD CONSTRAINT products_name_key UNIQUE (name)`"))
      << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.err, "could not create unique index")) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.out, "the transaction was rolled back")) << r.out;
  EXPECT_EQ(Dump(parent), before) << "the parent is untouched";
  EXPECT_EQ(Branches(), branches_before) << "no rehearsal branch, no restore point left";

  // The same with an explicit script, statements after the failing one never run.
  std::string script = WriteFile("broken.sql",
                                 "ALTER TABLE ecommerce.products ADD COLUMN sku text;\n"
                                 "UPDATE ecommerce.products SET sku = 'P' || id;\n"
                                 "ALTER TABLE ecommerce.products ALTER COLUMN sku SET NOT NULL,\n"
                                 "  ADD CONSTRAINT products_name_key UNIQUE (name);\n"
                                 "CREATE INDEX CONCURRENTLY products_sku_idx ON "
                                 "ecommerce.products (sku);\n");
  web::json::value j;
  CommandResult jr =
      local_->Cli({"-o", "json", "branch", "promote", "dev-broken", "--file", script});
  EXPECT_NE(jr.exit_code, 0);
  j = web::json::value::parse(jr.out);
  EXPECT_EQ(j.at("result").as_string(), "RehearsalFailed");
  web::json::value st = j.at("rehearsal").at("apply").at("statements");
  ASSERT_EQ(st.size(), 3u) << j.serialize();
  EXPECT_TRUE(st[2].has_field("error"));
  EXPECT_FALSE(j.has_field("restorePoint"));
  EXPECT_EQ(Dump(parent), before);
  EXPECT_EQ(Branches(), branches_before);
  local_->Query(parent, "DELETE FROM ecommerce.products WHERE name = 'Duplicate'");
  EXPECT_EQ(local_->Cli({"branch", "delete", "dev-broken"}).exit_code, 0);
}

TEST_F(LocalPromoteTest, BrokenUserCheckIsCaughtInTheRehearsal) {
  CreateBranch("dev-rename", "development");
  const std::string dev = local_->Connstr("dev-rename");
  const std::string parent = local_->Connstr("development");
  // The application still reads `email`: the migration succeeds, the check fails.
  local_->Query(dev, "ALTER TABLE ecommerce.customers RENAME COLUMN email TO email_address");
  std::string check = WriteFile("app_reads.sql", "SELECT email FROM ecommerce.customers LIMIT 1");
  std::string passing = WriteFile("count.sql", "SELECT count(*) = 100 FROM ecommerce.customers");
  const std::string before = Dump(parent);
  CommandResult r =
      local_->Cli({"branch", "promote", "dev-rename", "--check", passing, "--check", check});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "check(s) failed: " + check)) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.out, "column \"email\" does not exist")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "ok     " + passing)) << r.out;
  EXPECT_EQ(Dump(parent), before);

  // A check command sees the rehearsal's connection string; its exit code decides.
  CommandResult c = local_->Cli(
      {"branch", "promote", "dev-rename", "--dry-run", "--check-command",
       "test \"$DATABASE_URL\" = \"$PGBRANCH_REHEARSAL_URI\" && /usr/lib/postgresql/15/bin/psql "
       "-X -At \"$DATABASE_URL\" -c 'SELECT email FROM ecommerce.customers LIMIT 1'"});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(c.out, "column \"email\" does not exist")) << c.Describe();
  CommandResult ok = local_->Cli(
      {"branch", "promote", "dev-rename", "--dry-run", "--check-command",
       "/usr/lib/postgresql/15/bin/psql -X -At \"$DATABASE_URL\" -c 'SELECT email_address FROM "
       "ecommerce.customers LIMIT 1'"});
  EXPECT_EQ(ok.exit_code, 0) << ok.Describe();
  EXPECT_EQ(Dump(parent), before);
  EXPECT_EQ(local_->Cli({"branch", "delete", "dev-rename"}).exit_code, 0);
}

// Promote into a protected root, then roll back with the command promote prints: the parent's
// exact schema and data come back under the same connection string; its state before is kept
// as a branch; refusals change nothing.
TEST_F(LocalPromoteTest, RestoreAfterAPromotionBringsBackTheParentUnderTheSameConnectionString) {
  ASSERT_EQ(local_->Cli({"branch", "create", "shop", "--protected"}).exit_code, 0);
  const std::string shop = local_->Connstr("shop");
  ASSERT_EQ(local_->Psql(shop, SampleSql()).exit_code, 0);
  // At rest: a running compute's sequences are WAL-logged 32 values ahead, so a restore point
  // taken of it (as any branch, or a crash) shows them advanced, as PostgreSQL does after a crash.
  ASSERT_EQ(local_->Cli({"endpoint", "suspend", "shop"}).exit_code, 0);
  CreateBranch("shop-dev", "shop");
  CreateBranch("shop-other", "shop");  // a child written to: keeps its data, cannot be restored to
  local_->Query(local_->Connstr("shop-other"), "CREATE TABLE ecommerce.other_t (i int)");
  local_->Query(local_->Connstr("shop-dev"),
                "ALTER TABLE ecommerce.customers ADD COLUMN loyalty_tier text");
  const std::string before = Dump(shop);

  web::json::value done = local_->CliJson({"branch", "promote", "shop-dev", "--allow-protected"});
  ASSERT_TRUE(done.is_object());
  ASSERT_EQ(done.at("result").as_string(), "Promoted") << done.serialize();
  const std::string rp = done.at("restorePoint").as_string();
  EXPECT_EQ(done.at("rollback").as_string(),
            absl::StrCat("pgbranch branch restore shop --to ", rp, " --allow-protected"));
  ASSERT_TRUE(HasColumn(shop, "customers", "loyalty_tier"));
  // An acknowledged write after the restore point: discarded only because the user asks.
  local_->Query(shop, "INSERT INTO ecommerce.customers (email, name) VALUES ('late@x', 'late')");
  const std::string promoted = Dump(shop);
  ASSERT_NE(promoted, before);

  // Refused, nothing changed: a protected parent without the flag, a missing branch or restore
  // point, a branch that is not a restore point of the parent, a child that was written to.
  const std::string branches_before = Branches();
  auto refused = [&](std::vector<std::string> args, const std::string& why) {
    std::vector<std::string> cmd = {"branch", "restore"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    CommandResult r = local_->Cli(cmd);
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_TRUE(absl::StrContains(r.err, why)) << r.Describe();
    EXPECT_EQ(Branches(), branches_before) << r.Describe();
  };
  refused({"shop", "--to", rp}, "--allow-protected");
  refused({"shop", "--to", "nope", "--allow-protected"}, "\"nope\" does not exist");
  refused({"nope", "--to", rp}, "branch \"nope\" does not exist");
  refused({"shop", "--to", "development", "--allow-protected"},
          "\"development\" is not a restore point of \"shop\"");
  refused({"shop", "--to", "shop-other", "--allow-protected"}, "was written to");
  EXPECT_EQ(Dump(shop), promoted);

  // The restore: same URI, the exact dump from before the promotion.
  CommandResult r = local_->Cli({"branch", "restore", "shop", "--to", rp, "--allow-protected",
                                 "--keep-current-as", "shop-promoted"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.out, "shop's changes since ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "remain readable in branch shop-promoted")) << r.out;
  EXPECT_EQ(local_->Connstr("shop"), shop);
  EXPECT_EQ(Dump(shop), before);
  EXPECT_FALSE(HasColumn(shop, "customers", "loyalty_tier"));
  // Written to again, and still there after its compute restarts.
  local_->Query(shop, "CREATE TABLE ecommerce.after_restore (i int)");
  ASSERT_EQ(local_->Cli({"endpoint", "suspend", "shop"}).exit_code, 0);
  EXPECT_EQ(local_->Query(shop, "SELECT count(*) FROM ecommerce.after_restore"), "0");

  // The other child keeps its data; the discarded state is readable in the kept branch.
  EXPECT_EQ(local_->Query(local_->Connstr("shop-other"), "SELECT count(*) FROM ecommerce.other_t"),
            "0");
  ASSERT_EQ(
      local_->Cli({"endpoint", "create", "shop-promoted", "--branch", "shop-promoted"}).exit_code,
      0);
  EXPECT_EQ(Dump(local_->Connstr("shop-promoted")), promoted);
  // shop's data is built on the kept branch; the other child's parent state was replaced.
  CommandResult del = local_->Cli({"branch", "delete", "shop-promoted"});
  EXPECT_NE(del.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(del.err, "keeps the state of \"shop\"")) << del.Describe();
  CommandResult reset = local_->Cli({"branch", "reset", "shop-other"});
  EXPECT_NE(reset.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(reset.err, "replaced by `branch restore`")) << reset.Describe();

  // Everything goes away in order: nothing is left behind.
  for (const std::string& b : {std::string("shop-dev"), std::string("shop-other"), rp}) {
    EXPECT_EQ(local_->Cli({"branch", "delete", b}).exit_code, 0) << b;
  }
  CommandResult unprotect = local_->Cli({"branch", "update", "shop", "--no-protected"});
  EXPECT_EQ(unprotect.exit_code, 0) << unprotect.Describe();
  EXPECT_EQ(local_->Cli({"branch", "delete", "shop"}).exit_code, 0);
  CommandResult last = local_->Cli({"branch", "delete", "shop-promoted"});
  EXPECT_EQ(last.exit_code, 0) << last.Describe();
  EXPECT_FALSE(absl::StrContains(Branches(), "shop"));
}

TEST_F(LocalPromoteTest, ConflictsAndAProtectedParentAreRefused) {
  // main is protected: refused without the flag, nothing created; a dry run is allowed.
  CreateBranch("hotfix", "main");
  const std::string main_uri = local_->Connstr("main");
  local_->Query(local_->Connstr("hotfix"),
                "ALTER TABLE ecommerce.orders ADD COLUMN IF NOT EXISTS gift_note text");
  const std::string branches_before = Branches();
  CommandResult refused = local_->Cli({"branch", "promote", "hotfix"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(refused.err, "--allow-protected")) << refused.Describe();
  EXPECT_EQ(Branches(), branches_before);
  EXPECT_FALSE(HasColumn(main_uri, "orders", "gift_note"));
  EXPECT_EQ(local_->Cli({"branch", "promote", "hotfix", "--dry-run"}).exit_code, 0);
  EXPECT_FALSE(HasColumn(main_uri, "orders", "gift_note"));

  // A change on the parent meanwhile that touches the same column: refused with the diff.
  CreateBranch("dev-conflict", "development");
  local_->Query(local_->Connstr("dev-conflict"),
                "ALTER TABLE ecommerce.products ALTER COLUMN price_cents TYPE bigint");
  const std::string parent = local_->Connstr("development");
  local_->Query(parent, "ALTER TABLE ecommerce.products ALTER COLUMN price_cents TYPE numeric");
  const std::string before = Dump(parent);
  CommandResult conflict = local_->Cli({"branch", "promote", "dev-conflict"});
  EXPECT_NE(conflict.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(conflict.err, "refused: 1 object(s) changed on both"))
      << conflict.Describe();
  EXPECT_TRUE(absl::StrContains(conflict.out, "TABLE ecommerce.products: changed (CONFLICT)"))
      << conflict.out;
  EXPECT_EQ(Dump(parent), before);

  // No parent: nothing to promote into.
  CommandResult root = local_->Cli({"branch", "promote", "main", "--dry-run"});
  EXPECT_NE(root.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(root.err, "has no parent")) << root.Describe();
  for (const char* b : {"hotfix", "dev-conflict"}) {
    EXPECT_EQ(local_->Cli({"branch", "delete", b}).exit_code, 0);
  }
}

}  // namespace
}  // namespace pgbranch::testing
