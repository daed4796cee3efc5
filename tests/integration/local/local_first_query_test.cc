// A new branch's first query: a branch of a running parent sees every row the parent committed
// before `branch create` (the parent checkpoints first when it wrote anything since its last
// checkpoint, so the branch replays next to no WAL);
// `branch create --wait=false` prints a connection string that works at once, the proxy holding
// the first client until the compute runs (no error, no retry), also for a branch of a branch
// that is itself still starting, and for its connection through the proxy's shared port.
#include <gtest/gtest.h>

#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/process_util.h"
#include "tests/integration/local/local_mode_fixture.h"

namespace pgbranch::testing {
namespace {

class LocalFirstQueryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    local_ = new LocalMode();
    absl::Status s = local_->Up();
    ASSERT_TRUE(s.ok()) << s;
    CommandResult r = local_->Cli({"branch", "create", "main", "--suspend-timeout", "0s"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    local_->Query(local_->Connstr("main"),
                  "CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, 1000)");
  }
  static void TearDownTestSuite() {
    delete local_;
    local_ = nullptr;
  }
  static std::string ControllerLog() {
    return cli::ReadFileOrEmpty(local_->state_dir() + "/logs/controller.log");
  }
  // The psql URI printed by `branch create` ("" if none).
  static std::string PrintedUri(const std::string& out) {
    std::smatch m;
    return std::regex_search(out, m, std::regex("psql '([^']+)'")) ? m[1].str() : "";
  }
  static LocalMode* local_;
};

LocalMode* LocalFirstQueryTest::local_ = nullptr;

TEST_F(LocalFirstQueryTest, BranchOfRunningParentSeesItsLastCommittedRow) {
  const std::string main_uri = local_->Connstr("main");
  // A few MB of WAL (worth a checkpoint before branching), and a row committed just before the
  // branch, with nothing between that would flush it otherwise.
  local_->Query(main_uri, "INSERT INTO t SELECT generate_series(1, 40000)");
  local_->Query(main_uri, "INSERT INTO t VALUES (-7)");
  CommandResult r =
      local_->Cli({"branch", "create", "dev", "--parent", "main", "--suspend-timeout", "0s"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const std::string dev_uri = PrintedUri(r.out);
  ASSERT_FALSE(dev_uri.empty()) << r.out;
  EXPECT_EQ(local_->Query(dev_uri, "SELECT count(*), min(v) FROM t"), "41001|-7");
  // The parent checkpointed first (it wrote since its last checkpoint), so the branch starts
  // from a nearly clean image.
  EXPECT_TRUE(absl::StrContains(ControllerLog(),
                                "msg=\"Checkpointed the parent before branching\" "
                                "namespace=default branch=dev parent=main"))
      << ControllerLog();
  // Both go on independently.
  local_->Query(main_uri, "INSERT INTO t VALUES (-8)");
  local_->Query(dev_uri, "INSERT INTO t VALUES (-9)");
  EXPECT_EQ(local_->Query(main_uri, "SELECT count(*), min(v) FROM t"), "41002|-8");
  EXPECT_EQ(local_->Query(dev_uri, "SELECT count(*), min(v) FROM t"), "41002|-9");
  EXPECT_EQ(local_->Cli({"branch", "delete", "dev"}).exit_code, 0);
}

TEST_F(LocalFirstQueryTest, ParentWithOneNewRowIsCheckpointedBeforeBranching) {
  // One row is enough (its page's full image after the last checkpoint is ~8 KB of WAL): the
  // branch would otherwise read that page cold and write it again at its end-of-recovery
  // checkpoint, on its start path.
  const std::string main_uri = local_->Connstr("main");
  local_->Query(main_uri, "INSERT INTO t VALUES (-11)");
  CommandResult r =
      local_->Cli({"branch", "create", "small", "--parent", "main", "--suspend-timeout", "0s"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const std::string uri = PrintedUri(r.out);
  ASSERT_FALSE(uri.empty()) << r.out;
  EXPECT_EQ(local_->Query(uri, "SELECT count(*) FROM t WHERE v = -11"), "1");
  EXPECT_TRUE(absl::StrContains(ControllerLog(),
                                "msg=\"Checkpointed the parent before branching\" "
                                "namespace=default branch=small parent=main"))
      << ControllerLog();
  EXPECT_EQ(local_->Cli({"branch", "delete", "small"}).exit_code, 0);
}

TEST_F(LocalFirstQueryTest, WaitFalseConnectionStringWorksAtOnce) {
  const std::string main_uri = local_->Connstr("main");
  const std::string expected = local_->Query(main_uri, "SELECT count(*) FROM t");
  CommandResult r = local_->Cli(
      {"branch", "create", "quick", "--parent", "main", "--suspend-timeout", "0s", "--wait=false"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const std::string uri = PrintedUri(r.out);
  ASSERT_FALSE(uri.empty()) << r.out;
  // One attempt, at once: the proxy holds the client while the compute starts.
  CommandResult q = local_->Psql(uri, "SELECT count(*) FROM t");
  ASSERT_EQ(q.exit_code, 0) << q.Describe();
  EXPECT_EQ(std::string(absl::StripAsciiWhitespace(q.out)), expected);
  EXPECT_EQ(uri, local_->Connstr("quick"));

  // A branch of a branch that is still starting, then a first connection through the shared
  // proxy port (routed by options=endpoint=), both at once.
  r = local_->Cli({"branch", "create", "quick2", "--parent", "quick", "--suspend-timeout", "0s",
                   "--wait=false"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  web::json::value c = local_->CliJson({"connstr", "quick2"});
  q = local_->Psql(c.at("proxyUri").as_string(), "SELECT count(*) FROM t");
  ASSERT_EQ(q.exit_code, 0) << q.Describe();
  EXPECT_EQ(std::string(absl::StripAsciiWhitespace(q.out)), expected);
  EXPECT_EQ(local_->Cli({"branch", "delete", "quick2"}).exit_code, 0);
  EXPECT_EQ(local_->Cli({"branch", "delete", "quick"}).exit_code, 0);
}

TEST_F(LocalFirstQueryTest, WaitFalseJsonIsTheCreateReply) {
  web::json::value v = local_->CliJson({"branch", "create", "quick3", "--parent", "main",
                                        "--suspend-timeout", "0s", "--wait=false"});
  ASSERT_TRUE(v.has_field("results")) << v.serialize();
  EXPECT_EQ(v.at("results").size(), 2u) << v.serialize();
  CommandResult q = local_->Psql(local_->Connstr("quick3"), "SELECT 1");
  EXPECT_EQ(q.exit_code, 0) << q.Describe();
  EXPECT_EQ(local_->Cli({"branch", "delete", "quick3"}).exit_code, 0);
}

}  // namespace
}  // namespace pgbranch::testing
