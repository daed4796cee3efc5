// Scale to zero and wake on connect, through the real proxy: a suspended endpoint answers the
// next psql; two clients during one wake both get in; an open idle-in-transaction session keeps
// the compute up; a wake that fails gives the client a clear error; with every endpoint idle no
// PostgreSQL runs at all.
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/local/local_mode_fixture.h"

namespace pgbranch::testing {
namespace {

class LocalScaleToZeroTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    local_ = new LocalMode();
    absl::Status s = local_->Up();
    ASSERT_TRUE(s.ok()) << s;
    CommandResult r = local_->Cli({"branch", "create", "main", "--suspend-timeout", "2s"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    local_->Query(local_->Connstr("main"), "CREATE TABLE t (v int); INSERT INTO t VALUES (42)");
  }
  static void TearDownTestSuite() {
    delete local_;
    local_ = nullptr;
  }
  static LocalMode* local_;
};

LocalMode* LocalScaleToZeroTest::local_ = nullptr;

TEST_F(LocalScaleToZeroTest, SuspendedEndpointWakesOnConnect) {
  ASSERT_TRUE(local_->WaitPhase("main", "Suspended"));
  EXPECT_EQ(local_->PostmastersRunning(), 0) << "every endpoint idle: zero PostgreSQL processes";
  EXPECT_FALSE(local_->Mounted("main"));
  EXPECT_EQ(local_->Query(local_->Connstr("main"), "SELECT v FROM t"), "42");
  // The same through the proxy's shared port, routed by options=endpoint=.
  ASSERT_TRUE(local_->WaitPhase("main", "Suspended"));
  web::json::value c = local_->CliJson({"connstr", "main"});
  EXPECT_EQ(local_->Query(c.at("proxyUri").as_string(), "SELECT v + 1 FROM t"), "43");
}

TEST_F(LocalScaleToZeroTest, TwoClientsDuringOneWakeBothSucceed) {
  ASSERT_TRUE(local_->WaitPhase("main", "Suspended"));
  const std::string uri = local_->Connstr("main");
  CommandResult a, b;
  std::thread ta([&] { a = local_->Psql(uri, "SELECT 'a', v FROM t"); });
  std::thread tb([&] { b = local_->Psql(uri, "SELECT 'b', v FROM t"); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.exit_code, 0) << a.Describe();
  EXPECT_EQ(b.exit_code, 0) << b.Describe();
  EXPECT_TRUE(absl::StrContains(a.out, "a|42"));
  EXPECT_TRUE(absl::StrContains(b.out, "b|42"));
}

TEST_F(LocalScaleToZeroTest, IdleInTransactionSessionPreventsSuspension) {
  const std::string uri = local_->Connstr("main");
  PostgresPipe session;
  ASSERT_TRUE(session
                  .Start({"/usr/lib/postgresql/15/bin/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1",
                          "-d", uri})
                  .ok());
  ASSERT_TRUE(session.Write("BEGIN; SELECT v FROM t;\n").ok());
  auto line = session.ReadLine(60);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "BEGIN");
  line = session.ReadLine(60);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "42");
  // Five times the suspend timeout with the transaction open: still running.
  ::sleep(10);
  web::json::value e = local_->CliJson({"endpoint", "get", "main"});
  EXPECT_EQ(e.at("status").at("phase").as_string(), "Running");
  ASSERT_TRUE(session.Write("SELECT v * 2 FROM t; COMMIT;\n").ok());
  line = session.ReadLine(60);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "84") << "the session survived";
  EXPECT_EQ(session.Finish(30), 0);
  EXPECT_TRUE(local_->WaitPhase("main", "Suspended")) << "suspends once the session is gone";
}

TEST_F(LocalScaleToZeroTest, AFailedWakeGivesTheClientAClearError) {
  // A compute that cannot start: PostgreSQL rejects its configuration.
  CommandResult r =
      local_->Cli({"branch", "create", "broken", "--parent", "main", "--no-endpoint"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string manifest =
      "apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: broken}\n"
      "spec: {branch: broken, suspendTimeout: 2s, postgresParameters: {shared_buffers: "
      "\"lots\"}}\n";
  CommandResult apply = local_->Cli({"apply", "-f", "-"}, 60, manifest);
  ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  CommandResult psql = local_->Psql(local_->Connstr("broken"), "SELECT 1", 120);
  EXPECT_NE(psql.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(psql.err, "broken")) << psql.err;
  EXPECT_TRUE(absl::StrContains(psql.err, "failed to start")) << psql.err;
  web::json::value e = local_->CliJson({"endpoint", "get", "broken"});
  EXPECT_FALSE(e.at("status").at("message").as_string().empty());
  EXPECT_EQ(local_->Cli({"endpoint", "delete", "broken"}).exit_code, 0);
  EXPECT_EQ(local_->Cli({"branch", "delete", "broken"}).exit_code, 0);
}

TEST_F(LocalScaleToZeroTest, UnknownEndpointIsAClearErrorAtTheProxy) {
  web::json::value c = local_->CliJson({"connstr", "main"});
  std::string uri = c.at("proxyUri").as_string();
  uri = uri.substr(0, uri.find("endpoint%3D")) + "endpoint%3Dnope";
  CommandResult psql = local_->Psql(uri, "SELECT 1");
  EXPECT_NE(psql.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(psql.err, "nope")) << psql.err;
}

}  // namespace
}  // namespace pgbranch::testing
