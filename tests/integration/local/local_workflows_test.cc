// The four workflows users run on Lakebase, end to end through the pgbranch CLI in local mode:
// production data in dev, a schema change from dev to production, drift, and CI ephemeral
// branches. One local instance serves the suite; `main` holds the ecommerce sample.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/local/local_mode_fixture.h"

namespace pgbranch::testing {
namespace {

// Idempotent, as a migration tool would write it.
constexpr char kLoyaltyMigration[] =
    "ALTER TABLE ecommerce.customers ADD COLUMN IF NOT EXISTS loyalty_tier text; "
    "UPDATE ecommerce.customers SET loyalty_tier = CASE WHEN id % 10 = 0 THEN 'gold' "
    "WHEN id % 3 = 0 THEN 'silver' ELSE 'bronze' END WHERE loyalty_tier IS NULL;";

class LocalWorkflowsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    local_ = new LocalMode();
    absl::Status s = local_->Up();
    ASSERT_TRUE(s.ok()) << s;
    CommandResult r = local_->Cli({"branch", "create", "main", "--protected"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    std::string uri = local_->Connstr("main");
    CommandResult load = local_->Psql(uri, SampleSql());
    ASSERT_EQ(load.exit_code, 0) << load.Describe();
  }
  static void TearDownTestSuite() {
    delete local_;
    local_ = nullptr;
  }
  static int64_t Count(const std::string& uri, const std::string& table) {
    return std::stoll(local_->Query(uri, "SELECT count(*) FROM ecommerce." + table));
  }
  static void CreateBranch(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"branch", "create"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = local_->Cli(argv);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }

  static LocalMode* local_;
};

LocalMode* LocalWorkflowsTest::local_ = nullptr;

TEST_F(LocalWorkflowsTest, ProductionDataInDev) {
  const std::string main_uri = local_->Connstr("main");
  EXPECT_EQ(Count(main_uri, "customers"), 100);
  EXPECT_EQ(Count(main_uri, "products"), 50);
  EXPECT_EQ(Count(main_uri, "orders"), 200);
  EXPECT_EQ(Count(main_uri, "order_items"), 500);

  CreateBranch({"dev", "--parent", "main"});
  const std::string dev_uri = local_->Connstr("dev");
  EXPECT_NE(dev_uri, main_uri);
  EXPECT_EQ(Count(dev_uri, "customers"), 100) << "the branch has production's data";
  local_->Query(dev_uri,
                "INSERT INTO ecommerce.customers (id, name, email) VALUES "
                "(1001, 'Dev Tester', 'dev@example.com')");
  EXPECT_EQ(Count(dev_uri, "customers"), 101);
  EXPECT_EQ(Count(main_uri, "customers"), 100) << "the parent is unchanged";

  // The branch shows up with useful columns, and in JSON for scripts.
  CommandResult list = local_->Cli({"branch", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_TRUE(absl::StrContains(list.out, "PARENT")) << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "dev")) << list.out;
  web::json::value dev = local_->CliJson({"branch", "get", "dev"});
  EXPECT_EQ(dev.at("spec").at("parent").as_string(), "main");
  EXPECT_EQ(dev.at("status").at("phase").as_string(), "Ready");

  // Rules users rely on.
  CommandResult del_main = local_->Cli({"branch", "delete", "main"});
  EXPECT_NE(del_main.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(del_main.err, "protected")) << del_main.err;
  CreateBranch({"dev-child", "--parent", "dev", "--no-endpoint"});
  CommandResult del_dev = local_->Cli({"branch", "delete", "dev"});
  EXPECT_NE(del_dev.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(del_dev.err, "dev-child")) << del_dev.err;
  EXPECT_EQ(local_->Cli({"branch", "delete", "dev-child"}).exit_code, 0);
  CommandResult reset_main = local_->Cli({"branch", "reset", "main"});
  EXPECT_NE(reset_main.exit_code, 0);
}

TEST_F(LocalWorkflowsTest, PointInTimeBranch) {
  const std::string main_uri = local_->Connstr("main");
  std::string before = local_->Query(
      main_uri, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
  local_->Query(main_uri, "CREATE TABLE ecommerce.audit_marker (id int)");
  CreateBranch({"before-marker", "--parent", "main", "--at", before});
  std::string uri = local_->Connstr("before-marker");
  EXPECT_EQ(local_->Query(uri, "SELECT to_regclass('ecommerce.audit_marker') IS NULL"), "t");
  EXPECT_EQ(Count(uri, "customers"), 100);
  EXPECT_EQ(local_->Query(main_uri, "SELECT to_regclass('ecommerce.audit_marker') IS NULL"), "f");
  local_->Query(main_uri, "DROP TABLE ecommerce.audit_marker");
}

TEST_F(LocalWorkflowsTest, SchemaChangeFromDevToProduction) {
  // "prod" plays production here (a child of main, so other tests keep main as is).
  CreateBranch({"prod", "--parent", "main"});
  CreateBranch({"feature-loyalty", "--parent", "prod"});
  const std::string prod = local_->Connstr("prod");
  const std::string dev = local_->Connstr("feature-loyalty");

  // Validate the migration on the branch, twice: it is idempotent.
  local_->Query(dev, kLoyaltyMigration);
  local_->Query(dev, kLoyaltyMigration);
  EXPECT_EQ(
      local_->Query(dev, "SELECT count(*) FROM ecommerce.customers WHERE loyalty_tier IS NULL"),
      "0");
  EXPECT_EQ(
      local_->Query(dev, "SELECT count(*) FROM ecommerce.customers WHERE loyalty_tier = 'gold'"),
      "10");
  EXPECT_EQ(
      local_->Query(
          prod,
          "SELECT count(*) FROM information_schema.columns WHERE column_name = 'loyalty_tier'"),
      "0")
      << "production is untouched until the migration is replayed";

  // Three-way against the parent: the change is the branch's, named by its object.
  CommandResult diff = local_->Cli({"branch", "schema-diff", "feature-loyalty"});
  ASSERT_EQ(diff.exit_code, 0) << diff.Describe();
  EXPECT_TRUE(absl::StrContains(diff.out, "changed on feature-loyalty since it branched"))
      << diff.out;
  EXPECT_TRUE(absl::StrContains(diff.out, "== TABLE ecommerce.customers: changed")) << diff.out;
  EXPECT_TRUE(absl::StrContains(diff.out, "+     loyalty_tier text")) << diff.out;
  EXPECT_FALSE(absl::StrContains(diff.out, "drift")) << diff.out;
  CommandResult gate = local_->Cli({"branch", "schema-diff", "feature-loyalty", "--exit-code"});
  EXPECT_EQ(gate.exit_code, 1) << "CI gates on --exit-code: " << gate.Describe();

  // Replay on production.
  local_->Query(prod, kLoyaltyMigration);
  EXPECT_EQ(
      local_->Query(prod, "SELECT count(*) FROM ecommerce.customers WHERE loyalty_tier = 'silver'"),
      local_->Query(dev, "SELECT count(*) FROM ecommerce.customers WHERE loyalty_tier = 'silver'"));
  // Two-way, the schemas are now the same; three-way, both sides made the same change.
  CommandResult same =
      local_->Cli({"branch", "schema-diff", "feature-loyalty", "--two-way", "--exit-code"});
  ASSERT_EQ(same.exit_code, 0) << same.Describe();
  EXPECT_TRUE(absl::StrContains(same.out, "no schema differences")) << same.out;
  web::json::value j = local_->CliJson({"branch", "schema-diff", "feature-loyalty", "--two-way"});
  EXPECT_TRUE(j.at("identical").as_bool());
  web::json::value three = local_->CliJson({"branch", "schema-diff", "feature-loyalty"});
  ASSERT_EQ(three.at("changes").size(), 1u) << three.serialize();
  EXPECT_EQ(three.at("changes")[0].at("object").as_string(), "TABLE ecommerce.customers");
  EXPECT_EQ(three.at("changes")[0].at("side").as_string(), "both");
  EXPECT_FALSE(three.at("changes")[0].at("conflict").as_bool());
}

TEST_F(LocalWorkflowsTest, DriftShowsAndAResetFromTheUpdatedParentHasBothChanges) {
  CreateBranch({"prod-drift", "--parent", "main"});
  CreateBranch({"feature-discount", "--parent", "prod-drift"});
  const std::string prod = local_->Connstr("prod-drift");
  const std::string feature = local_->Connstr("feature-discount");
  const char* feature_migration =
      "ALTER TABLE ecommerce.orders ADD COLUMN IF NOT EXISTS discount_cents integer DEFAULT 0";
  local_->Query(feature, feature_migration);
  // Meanwhile production gains a column.
  local_->Query(prod, "ALTER TABLE ecommerce.orders ADD COLUMN IF NOT EXISTS gift_note text");

  // Three-way: the parent's new column is drift, not the branch dropping it; the two changes to
  // one table touch different columns, so they do not conflict.
  CommandResult diff = local_->Cli({"branch", "schema-diff", "feature-discount"});
  ASSERT_EQ(diff.exit_code, 0) << diff.Describe();
  EXPECT_FALSE(absl::StrContains(diff.out, "-     gift_note text")) << "drift: " << diff.out;
  EXPECT_TRUE(absl::StrContains(diff.out, "== TABLE ecommerce.orders: changed (compatible)"))
      << diff.out;
  EXPECT_TRUE(absl::StrContains(diff.out, "+     gift_note text")) << diff.out;
  EXPECT_TRUE(absl::StrContains(diff.out, "+     discount_cents integer")) << diff.out;
  web::json::value j = local_->CliJson({"branch", "schema-diff", "feature-discount"});
  ASSERT_EQ(j.at("changes").size(), 1u) << j.serialize();
  EXPECT_EQ(j.at("changes")[0].at("side").as_string(), "both");
  EXPECT_EQ(j.at("conflicts").as_integer(), 0);
  // Two-way (the old view) shows the parent's column as missing on the branch.
  CommandResult two = local_->Cli({"branch", "schema-diff", "feature-discount", "--two-way"});
  EXPECT_TRUE(absl::StrContains(two.out, "-     gift_note text")) << two.out;

  // Re-branch from the updated parent (reset keeps the connection string), re-apply the change.
  CommandResult reset = local_->Cli({"branch", "reset", "feature-discount"});
  ASSERT_EQ(reset.exit_code, 0) << reset.Describe();
  EXPECT_EQ(local_->Connstr("feature-discount"), feature);
  local_->Query(feature, feature_migration);
  EXPECT_EQ(local_->Query(feature,
                          "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM "
                          "information_schema.columns WHERE table_name = 'orders' AND column_name "
                          "IN ('gift_note', 'discount_cents')"),
            "discount_cents,gift_note");
  CommandResult after = local_->Cli({"branch", "schema-diff", "feature-discount"});
  EXPECT_TRUE(absl::StrContains(after.out, "+     discount_cents")) << after.out;
  // No drift left: the branch point is the updated parent, which has gift_note.
  EXPECT_FALSE(absl::StrContains(after.out, "(drift;")) << after.out;
  EXPECT_FALSE(absl::StrContains(after.out, "+     gift_note")) << after.out;
  EXPECT_FALSE(absl::StrContains(after.out, "-     gift_note")) << after.out;
}

TEST_F(LocalWorkflowsTest, CiEphemeralBranchesExpireWithTheirComputes) {
  CreateBranch({"prod-ci", "--parent", "main"});
  const std::vector<std::string> prs = {"pr-101", "pr-102", "pr-103"};
  for (const auto& pr : prs) CreateBranch({pr, "--parent", "prod-ci", "--ttl", "1h"});
  // Each pull request migrates and runs its tests; pr-103's migration is broken on real data
  // (a NOT NULL column without a default on a non-empty table).
  std::map<std::string, int> results;
  for (const auto& pr : prs) {
    std::string uri = local_->Connstr(pr);
    std::string migration =
        pr == "pr-103" ? "ALTER TABLE ecommerce.products ADD COLUMN sku text NOT NULL"
                       : "ALTER TABLE ecommerce.products ADD COLUMN IF NOT EXISTS sku text";
    CommandResult m = local_->Psql(uri, migration);
    CommandResult t =
        m.exit_code == 0
            ? local_->Psql(uri, "SELECT count(*) FROM ecommerce.products WHERE sku IS NULL")
            : m;
    results[pr] = t.exit_code;
  }
  EXPECT_EQ(results["pr-101"], 0);
  EXPECT_EQ(results["pr-102"], 0);
  EXPECT_NE(results["pr-103"], 0) << "the broken migration fails, as CI should report";

  web::json::value b = local_->CliJson({"branch", "get", "pr-101"});
  EXPECT_FALSE(b.at("status").at("expireTime").as_string().empty());
  EXPECT_EQ(local_->Cli({"debug", "advance-clock", "61m"}).exit_code, 0);
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  bool gone = false;
  while (!gone && absl::Now() < deadline) {
    gone = true;
    for (const auto& pr : prs) {
      if (local_->Cli({"branch", "get", pr}).exit_code == 0) gone = false;
      if (local_->Cli({"endpoint", "get", pr}).exit_code == 0) gone = false;
    }
    if (!gone) ::usleep(200'000);
  }
  EXPECT_TRUE(gone) << "expired branches and their endpoints are deleted";
  for (const auto& pr : prs) EXPECT_FALSE(local_->Mounted(pr)) << pr << " compute still mounted";
  // Branches without a TTL stay.
  EXPECT_EQ(local_->Cli({"branch", "get", "prod-ci"}).exit_code, 0);
  EXPECT_EQ(local_->Cli({"branch", "get", "main"}).exit_code, 0);
}

}  // namespace
}  // namespace pgbranch::testing
